"""Limits on streamed requests: the SPEC's order of the checks on every streaming route (each
refusal a JSON error before any event), and a key's period that ends while one of its streams
is in flight (its hold still counts in the new period, and its charge lands there)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.clock import clear_of_midnight
from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.gateway.conftest import Box
from tests.limits.test_key_limits import (
    CAP,
    FLAT,
    HELLO,
    ORDER,
    anthropic_type,
    chat,
    each,
    every_condition_at_once,
    key_row,
    listed,
    new_key,
    openai_code,
    write_db,
)
from tests.support import TLS, eventually

pytestmark = pytest.mark.timeout(120)


def streamed(box: Box, route: str, key: str, model: str) -> httpx.Response:
    """One streamed request on an inference route that streams."""
    if route == "messages":
        body = {"model": model, "messages": HELLO, "max_tokens": CAP, "stream": True}
        headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
        return httpx.post(box.url + "/v1/messages", json=body, headers=headers, verify=TLS)
    if route == "responses":
        body = {"model": model, "input": "hi", "max_output_tokens": CAP, "stream": True}
        return box.http(key).post("/v1/responses", json=body)
    body = {"model": model, "messages": HELLO, "max_tokens": CAP, "stream": True}
    return box.http(key).post("/v1/chat/completions", json=body)


def refused(route: str, response: httpx.Response) -> tuple[int, str]:
    assert response.headers["content-type"].startswith("application/json"), response.text
    if route == "messages":
        return anthropic_type(response)
    return openai_code(response)


@pytest.mark.parametrize("route", ["chat", "responses", "messages"])
def test_the_order_of_the_checks_holds_on_streamed_requests(
    box: Box, fake: FakeOpenAI, route: str
) -> None:
    """As the unstreamed test in test_key_limits.py: every condition at once, then taken away
    one at a time; a streamed request is refused before its stream starts, in its dialect,
    and a 429 carries Retry-After."""
    email, key, steps = every_condition_at_once(box)
    seen = []
    for model, take_away in steps:
        answer = streamed(box, route, key, model)
        seen.append(refused(route, answer))
        if answer.status_code == 429:
            assert 1 <= int(answer.headers["retry-after"]) <= 60
        take_away()
    assert seen == ORDER["anthropic" if route == "messages" else "openai"]
    assert box.balance(email) == (0, 0) and len(fake.requests) == 1  # the setup's


def test_a_period_that_ends_during_a_stream_keeps_its_hold_and_takes_its_charge(
    box: Box, fake: FakeOpenAI
) -> None:
    """A daily cap of two requests' worth: one spent, one streaming (held). The day ends (the
    stored period began yesterday) while the stream runs: the new period starts at 0 spent,
    but the stream's hold still counts, so one more request fits and a second does not; the
    stream's charge lands in the new period when it settles."""
    clear_of_midnight()
    email, _ = box.new_user("50")
    key, key_id = new_key(box, email, limit_usd=f"{2 * each() / 1e9:.9f}", limit_reset="daily")
    fake.default = Reply(completion_tokens_from_cap=True)
    assert chat(box, key).status_code == 200
    fake.push(  # the stream's reply, whenever its call reaches the fake (after its hold)
        Reply(completion_tokens_from_cap=True, pieces=[f"w{i} " for i in range(20)],
              piece_delay=0.25)
    )  # fmt: skip
    called = len(fake.requests)
    answers: list[httpx.Response] = []
    stream = threading.Thread(target=lambda: answers.append(streamed(box, "chat", key, FLAT)))
    stream.start()
    try:
        eventually(lambda: key_row(box, key_id)[:2] == (each(), each()), "the stream's hold")
        eventually(lambda: len(fake.requests) > called, "the stream's call upstream")
        assert openai_code(chat(box, key)) == (402, "key_limit_reached")  # spent + held: full
        yesterday = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=1)
        write_db(box, "UPDATE api_key SET period_start = ? WHERE uuid = ?", str(yesterday),
                 key_id)  # fmt: skip
        assert listed(box, key, key_id)["spent_usd"] == 0
        assert chat(box, key).status_code == 200  # the new period: 0 spent, the stream held
        assert openai_code(chat(box, key)) == (402, "key_limit_reached")
    finally:
        stream.join(timeout=60)
    assert answers and answers[0].status_code == 200
    assert answers[0].text.endswith("data: [DONE]\n\n")
    assert key_row(box, key_id)[:2] == (2 * each(), 0)  # today's request and the stream
    assert listed(box, key, key_id)["spent_usd"] == pytest.approx(2 * each() / 1e9)
    assert box.balance(email)[0] == 50 * 10**9 - 3 * each()  # the account paid all three
