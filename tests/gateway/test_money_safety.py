"""The hold bounds the charge and the provider's count sets it (issue 20, items 1 and 2): a
client leaving a stream pays what the provider reports, media of unknown size reserves the
model's context window, and a stream that will not stop is cut at the reserved output cap."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.gateway.conftest import (
    IN_PRICE,
    MODEL,
    MODEL_PRICES,
    NANOS,
    OUT_PRICE,
    Box,
    BoxFactory,
    cost_nanos,
)

pytestmark = pytest.mark.timeout(120)
HELLO = [{"role": "user", "content": "Say hello"}]
URL = "/v1/chat/completions"


@pytest.fixture(scope="module")
def box(box_factory: BoxFactory) -> Box:
    return box_factory()


def leave_after_answer(box: Box, key: str, body: dict[str, Any], answer: str) -> str:
    """Stream a request, close the connection as soon as the visible answer arrived; returns
    the request id."""
    text = ""
    with box.http(key) as http, http.stream("POST", URL, json=body) as response:
        assert response.status_code == 200, response.read()
        request_id = response.headers["x-request-id"]
        for line in response.iter_lines():
            if line.startswith("data: {"):
                choices = json.loads(line[6:])["choices"]
                text += (choices[0]["delta"].get("content") or "") if choices else ""
                if text == answer:
                    break
    assert text == answer
    return request_id


REASONING = Reply(
    content="The answer is 42.",
    prompt_tokens=30,
    completion_tokens=20_000,
    reasoning_tokens=19_900,
    tail_delay=1.0,
)


def test_a_client_leaving_a_reasoning_stream_pays_the_providers_count(
    box: Box, fake: FakeOpenAI
) -> None:
    """20,000 completion tokens, 19,900 of them hidden reasoning: the client that leaves once
    the visible answer arrived pays what the provider reports, not 7 estimated tokens."""
    email, key = box.new_user("1")
    start = box.balance(email)[0]
    fake.push(REASONING)
    body = {"model": MODEL, "messages": HELLO, "stream": True, "max_tokens": 25_000}
    request_id = leave_after_answer(box, key, body, REASONING.content)
    row = box.settled_row(request_id)
    cost = cost_nanos(30, 20_000, IN_PRICE, OUT_PRICE)
    assert (row["status"], row["estimated"], row["error_code"]) == ("abandoned", 0, "client_closed")
    assert (row["input_tokens"], row["output_tokens"], row["cost_nanos"]) == (30, 20_000, cost)
    assert cost <= row["hold_nanos"]
    assert box.balance(email) == (start - cost, 0)


def test_a_stream_that_will_not_stop_is_cut_at_the_cap(box: Box, fake: FakeOpenAI) -> None:
    """An upstream ignoring max_tokens: the client gets at most the cap, a clean end
    (finish_reason "length", its usage chunk, [DONE]); the upstream is closed; the charge stays
    within the hold."""
    email, key = box.new_user("1")
    fake.push(Reply(content="Go", endless=" x"))
    body = {"model": MODEL, "messages": HELLO, "stream": True, "max_tokens": 300,
            "stream_options": {"include_usage": True}}  # fmt: skip
    with box.http(key) as http, http.stream("POST", URL, json=body) as response:
        request_id = response.headers["x-request-id"]
        raw = response.read()
    events = [json.loads(e[6:]) for e in raw.split(b"\n\n") if e.startswith(b"data: {")]
    pieces = [e for e in events if e["choices"] and e["choices"][0]["delta"].get("content")]
    assert 250 <= len(pieces) <= 300
    assert events[-2]["choices"][0]["finish_reason"] == "length"
    assert events[-1]["choices"] == [] and events[-1]["usage"]["completion_tokens"] >= len(pieces)
    assert raw.endswith(b"data: [DONE]\n\n")
    assert fake.client_gone.wait(10), "the box must close the upstream"
    row = box.settled_row(request_id)
    assert row["status"] == "ok" and 0 < row["cost_nanos"] <= row["hold_nanos"]
    assert row["cost_nanos"] == round(events[-1]["usage"]["cost_usd"] * NANOS)
    assert box.balance(email) == (NANOS - row["cost_nanos"], 0)


PDF = {"type": "file", "file": {"filename": "report.pdf", "file_data": "https://x.test/r.pdf"}}


def test_media_of_unknown_size_reserves_the_context_window(box: Box, fake: FakeOpenAI) -> None:
    """20 concurrent requests each carrying a PDF by URL (the provider counts 100k tokens)
    against $1: only as many are admitted as $1 covers at a 120k-token context window; the
    rest get 402 before any upstream call, and the total charged stays within the balance."""
    box.cli("models", "set", MODEL, *MODEL_PRICES, "--context-tokens", "120000")
    listed = {m["id"]: m for m in json.loads(box.cli("models", "list", "--json"))}
    assert listed[MODEL]["context_tokens"] == 120_000
    time.sleep(1.1)  # the box's routing snapshot reloads within a second
    email, key = box.new_user("1")
    fake.default = Reply(prompt_tokens=100_000, completion_tokens=10, delay_before=1.0)
    message = {"role": "user", "content": [{"type": "text", "text": "Summarise"}, PDF]}
    body = {"model": MODEL, "messages": [message], "max_tokens": 10}

    def ask(_: int) -> httpx.Response:
        with box.http(key) as http:
            return http.post(URL, json=body)

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(ask, range(20)))
    served = [a for a in answers if a.status_code == 200]
    refused = [a for a in answers if a.status_code == 402]
    assert len(served) + len(refused) == 20
    holds = {box.settled_row(a.headers["x-request-id"])["hold_nanos"] for a in served}
    (hold,) = holds
    assert hold >= cost_nanos(120_000, 10, IN_PRICE, OUT_PRICE)
    assert len(served) == NANOS // hold == 3
    assert len(fake.requests) == len(served)
    assert refused[0].json()["error"]["code"] == "insufficient_credits"
    charged = sum(int(r[0]) for r in box.query(
        "SELECT u.cost_nanos FROM usage_record u JOIN \"user\" s ON s.id = u.user_id"
        " WHERE s.email = ? AND u.status = 'ok'", email))  # fmt: skip
    assert charged == len(served) * cost_nanos(100_000, 10, IN_PRICE, OUT_PRICE) <= NANOS
    assert box.balance(email) == (NANOS - charged, 0)
    assert "covers only" not in box.server.log_text()
    box.cli("doctor")


def test_a_stop_lets_an_abandoned_stream_finish_and_charges_it(
    box_factory: BoxFactory, fake: FakeOpenAI
) -> None:
    """SIGTERM while a stream whose client left is still being read: the stop waits for the
    provider's usage and charges it before the process exits."""
    box = box_factory()
    email, key = box.new_user("1")
    fake.push(REASONING)
    body = {"model": MODEL, "messages": HELLO, "stream": True, "max_tokens": 25_000}
    request_id = leave_after_answer(box, key, body, REASONING.content)
    assert box.server.stop() == 0, box.server.log_text()
    row = box.usage_row(request_id)
    cost = cost_nanos(30, 20_000, IN_PRICE, OUT_PRICE)
    assert (row["status"], row["output_tokens"], row["cost_nanos"]) == ("abandoned", 20_000, cost)
    assert box.balance(email) == (NANOS - cost, 0)
    box.cli("doctor")


@pytest.mark.parametrize("streamed", [False, True])
def test_an_estimate_counts_each_cjk_character_a_token(
    box: Box, fake: FakeOpenAI, streamed: bool
) -> None:
    """An upstream that never reports usage: 20 CJK characters are charged 20 output tokens,
    not the 5 that 4 characters a token would make of them."""
    _, key = box.new_user("1")
    fake.push(Reply(content="数据分析" * 5, usage=False))
    body: dict[str, Any] = {"model": MODEL, "messages": HELLO, "stream": streamed}
    with box.http(key) as http:
        answer = http.post(URL, json=body)
    assert answer.status_code == 200, answer.text
    row = box.settled_row(answer.headers["x-request-id"])
    assert (row["estimated"], row["output_tokens"]) == (1, 20)
