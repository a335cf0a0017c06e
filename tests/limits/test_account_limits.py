"""An account's requests per minute and requests in flight, counted in the database: past them
a 429 with Retry-After, whichever of two workers the requests reach; `[limits]` gives the
defaults, `users limits` an account's own (0: unlimited)."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest

from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.gateway.conftest import MODEL, Box, BoxFactory
from tests.support import TLS

pytestmark = pytest.mark.timeout(120)
BODY = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 20}


def one_request(box: Box, key: str) -> httpx.Response:
    """A request on a connection of its own (so the two workers both get some)."""
    with box.http(key) as client:
        return client.post("/v1/chat/completions", json=BODY)


async def _burst(box: Box, key: str, count: int) -> list[httpx.Response]:
    headers = {"authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(
        base_url=box.url, headers=headers, timeout=60, verify=TLS
    ) as client:
        calls = [client.post("/v1/chat/completions", json=BODY) for _ in range(count)]
        return await asyncio.gather(*calls)


@pytest.fixture(scope="module")
def two_workers(box_factory: BoxFactory) -> Box:
    return box_factory("--workers", "2")


def test_requests_per_minute_hold_across_two_workers(two_workers: Box, fake: FakeOpenAI) -> None:
    box = two_workers
    email, key = box.new_user("5")
    box.cli("users", "limits", email, "--rpm", "3")
    answers = [one_request(box, key) for _ in range(7)]
    assert [a.status_code for a in answers] == [200] * 3 + [429] * 4
    for refused in answers[3:]:
        assert refused.json()["error"]["type"] == "rate_limit_error"
        assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert len(fake.requests) == 3
    assert box.query('SELECT held_nanos FROM "user" WHERE email = ?', email) == [(0,)]
    box.cli("users", "limits", email, "--rpm", "0")  # unlimited from the next request on
    assert one_request(box, key).status_code == 200


def test_concurrent_requests_hold_across_two_workers(two_workers: Box, fake: FakeOpenAI) -> None:
    box = two_workers
    email, key = box.new_user("5")
    box.cli("users", "limits", email, "--concurrent", "2")
    fake.default = Reply(delay_before=3.0)
    answers = asyncio.run(_burst(box, key, 8))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200, 200] + [429] * 6, statuses
    assert {a.headers["retry-after"] for a in answers if a.status_code == 429} == {"1"}
    assert len(fake.requests) == 2
    fake.default = Reply()
    assert one_request(box, key).status_code == 200  # the two finished: room again


def test_limits_defaults_apply_unless_an_account_has_its_own(
    box_factory: BoxFactory, fake: FakeOpenAI
) -> None:
    box = box_factory(limits={"rpm": 2})
    email, key = box.new_user("5")
    free_email, free_key = box.new_user("5")
    box.cli("users", "limits", free_email, "--rpm", "0")
    assert [one_request(box, key).status_code for _ in range(3)] == [200, 200, 429]
    assert [one_request(box, free_key).status_code for _ in range(3)] == [200, 200, 200]
    anthropic = httpx.post(
        box.url + "/v1/messages",
        json={"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 9},
        headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
        verify=TLS,
    )
    assert anthropic.status_code == 429
    assert anthropic.json()["error"]["type"] == "rate_limit_error"
    assert "retry-after" in anthropic.headers
    box.cli("users", "limits", email, "--rpm", "default")
    shown = box.cli("users", "show", email, "--json")
    assert '"rpm": null' in shown


def test_retry_after_of_a_full_account_waits_for_its_rpm_too(
    two_workers: Box, fake: FakeOpenAI
) -> None:
    """An account with a request in flight (its max_concurrent) and no request left in this
    minute (its rpm): the Retry-After says when a request can be admitted again, the minute's
    end, not the second a request in flight may take (a client obeying 1 s retried in vain
    for up to a minute)."""
    box = two_workers
    email, key = box.new_user("5")
    box.cli("users", "limits", email, "--rpm", "2", "--concurrent", "1")
    assert one_request(box, key).status_code == 200
    fake.default = Reply(delay_before=3.0)
    in_flight = threading.Thread(target=one_request, args=(box, key))
    in_flight.start()
    try:
        deadline = time.monotonic() + 10
        while box.query('SELECT COUNT(*) FROM hold h JOIN "user" u ON u.id = h.user_id '
                        "WHERE u.email = ?", email)[0][0] == 0:  # fmt: skip
            assert time.monotonic() < deadline, "the second request was never admitted"
            time.sleep(0.05)
        refused = one_request(box, key)
    finally:
        in_flight.join(30)
    assert refused.status_code == 429, refused.text
    assert 50 <= int(refused.headers["retry-after"]) <= 60, refused.headers
    after_it = one_request(box, key)  # the one in flight ended: the minute is what is left
    assert after_it.status_code == 429
    assert int(after_it.headers["retry-after"]) <= int(refused.headers["retry-after"])
