"""Limits as a user trying to get past them sees them: a stream whose client left still counts
as in flight, and a capped key, an account's rpm and its requests in flight hold across two
boxes sharing one PostgreSQL database."""

from __future__ import annotations

import asyncio
import json
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.gateway.bursts import EACH, FLAT, FLAT_MODEL, burst, statuses
from tests.gateway.conftest import MODEL, Box, BoxFactory, pg_box_at
from tests.support import TLS, ServerProcess, free_port, write_config

pytestmark = pytest.mark.timeout(150)
URL = "/v1/chat/completions"
BODY = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 20}


def one(box: Box, key: str) -> httpx.Response:
    with box.http(key) as client:
        return client.post(URL, json=BODY)


def leave_a_stream(box: Box, key: str) -> None:
    """Start a stream, read its first event and leave (the connection closed)."""
    with box.http(key) as http, http.stream("POST", URL, json={**BODY, "stream": True}) as answer:
        assert answer.status_code == 200
        for line in answer.iter_lines():
            if line.startswith("data:"):
                return


def held_count(box: Box, email: str) -> int:
    rows = box.query(
        'SELECT COUNT(*) FROM hold h JOIN "user" u ON u.id = h.user_id WHERE u.email = ?', email
    )
    return int(rows[0][0])


def test_a_stream_its_client_left_counts_as_in_flight_until_it_ends(
    box_factory: BoxFactory, fake: FakeOpenAI
) -> None:
    box = box_factory()
    email, key = box.new_user("5")
    box.cli("users", "limits", email, "--concurrent", "1")
    fake.paused.clear()
    fake.resume.clear()
    fake.push(_eight_pieces_held_after_the_first())  # the upstream works on until resumed
    leave_a_stream(box, key)
    assert held_count(box, email) == 1  # the box reads on: the upstream still works on it
    refused = one(box, key)
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"
    assert refused.headers["retry-after"] == "1"
    fake.resume.set()
    deadline = time.monotonic() + 20
    while held_count(box, email):
        assert time.monotonic() < deadline, "the abandoned stream never settled"
        time.sleep(0.1)
    assert one(box, key).status_code == 200
    rows = box.query(
        "SELECT r.status, r.output_tokens FROM usage_record r JOIN \"user\" u "
        "ON u.id = r.user_id WHERE u.email = ? ORDER BY r.id", email,
    )  # fmt: skip
    assert [r[0] for r in rows] == ["abandoned", "ok"] and rows[0][1] == 8


def _eight_pieces_held_after_the_first() -> Reply:
    """A stream of eight pieces (and its usage) that stops after the first until the test sets
    `fake.resume` (a fixed pace of 3 s let a loaded machine see it end before the checks)."""

    def event(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                 "choices": [choice]}  # fmt: skip
        return b"data: " + json.dumps(chunk).encode() + b"\n\n"

    usage = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
             "choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 8,
                                      "total_tokens": 19}}  # fmt: skip
    parts = [event({"role": "assistant", "content": "a"})]
    parts += [event({"content": "a"}) for _ in range(7)] + [event({}, "stop")]
    parts += [b"data: " + json.dumps(usage).encode() + b"\n\n", b"data: [DONE]\n\n"]
    return Reply(raw=parts, pause_after=1)


@pytest.fixture
def two_boxes(tmp_path: Path, pg_url: str, fake: FakeOpenAI) -> Iterator[list[Box]]:
    """Two boxes on one fresh PostgreSQL database (the catalog made by the first)."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = pg_box_at(tmp_path / "a", pg_url, fake)
    started = [first]
    try:
        first.cli(*FLAT_MODEL)
        started.append(second_box(tmp_path / "b", first))
        started[1].until_served(FLAT, MODEL)
        yield started
    finally:
        for box in started:
            box.server.stop()


def second_box(folder: Path, first: Box) -> Box:
    """Another box on the first's database (its catalog is already there)."""
    sections = tomllib.loads(first.config.read_text())
    sections["server"]["port"] = port = free_port()
    config = write_config(folder / "codelace.toml", sections)
    box = Box(None, config, Path(), first.fake)  # type: ignore[arg-type]
    box.server = ServerProcess(config, port).start()
    return box


async def _at_once(boxes: list[Box], key: str, count: int) -> list[int]:
    headers = {"authorization": f"Bearer {key}"}
    clients = [
        httpx.AsyncClient(base_url=b.url, headers=headers, timeout=60, verify=TLS) for b in boxes
    ]
    try:
        calls = [clients[n % len(clients)].post(URL, json=BODY) for n in range(count)]
        return [answer.status_code for answer in await asyncio.gather(*calls)]
    finally:
        for client in clients:
            await client.aclose()


def test_a_key_cap_and_account_limits_hold_across_two_boxes(
    two_boxes: list[Box], fake: FakeOpenAI
) -> None:
    first, second = two_boxes
    email, _ = first.new_user("100")
    cap = 6 * EACH + EACH // 2
    key = first.cli("keys", "create", email, "--limit-usd", f"{cap / 1e9:.9f}").split()[0]
    fake.default = Reply(completion_tokens_from_cap=True, delay_before=0.3)
    outcomes = burst(two_boxes, key, 40)
    assert statuses(outcomes).count(200) == 6, outcomes
    assert outcomes.count((402, "key_limit_reached")) == 34
    assert first.query(
        "SELECT spent_nanos, held_nanos FROM api_key WHERE key_prefix = ?", key[:7]
    ) == [(6 * EACH, 0)]

    email, key = first.new_user("5")
    first.cli("users", "limits", email, "--concurrent", "2")
    fake.default = Reply(delay_before=2.0)
    answered = sorted(asyncio.run(_at_once(two_boxes, key, 10)))
    assert answered == [200, 200] + [429] * 8, answered

    first.cli("users", "limits", email, "--concurrent", "0", "--rpm", "3")
    fake.default = Reply()
    answered = [one(two_boxes[n % 2], key).status_code for n in range(6)]
    assert answered == [200] * 3 + [429] * 3, answered
    assert second.query("SELECT COUNT(*) FROM hold") == [(0,)]
    first.cli("doctor")


async def _streams(box: Box, key: str, count: int) -> list[tuple[int, bytes]]:
    body = {"model": FLAT, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 100,
            "stream": True, "stream_options": {"include_usage": True}}  # fmt: skip
    headers = {"authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(
        base_url=box.url, headers=headers, timeout=60, verify=TLS
    ) as client:

        async def one_stream() -> tuple[int, bytes]:
            answer = await client.post(URL, json=body)
            return answer.status_code, answer.content

        return await asyncio.gather(*(one_stream() for _ in range(count)))


def test_concurrent_streams_on_a_capped_key_and_a_small_balance_never_pass_them(
    box_factory: BoxFactory, fake: FakeOpenAI
) -> None:
    box = box_factory("--workers", "2")
    box.cli(*FLAT_MODEL)
    box.until_served(FLAT, workers=2)
    email, _ = box.new_user("100")
    cap = 5 * EACH + EACH // 2
    key = box.cli("keys", "create", email, "--limit-usd", f"{cap / 1e9:.9f}").split()[0]
    fake.default = Reply(completion_tokens_from_cap=True, delay_before=0.3, piece_delay=0.05)
    answers = asyncio.run(_streams(box, key, 30))
    assert sorted(status for status, _ in answers) == [200] * 5 + [402] * 25
    assert all(body.endswith(b"data: [DONE]\n\n") for status, body in answers if status == 200)
    assert box.query(
        "SELECT spent_nanos, held_nanos FROM api_key WHERE key_prefix = ?", key[:7]
    ) == [(5 * EACH, 0)]

    poor, key = box.new_user(f"{(3 * EACH + EACH // 2) / 1e9:.9f}")
    answers = asyncio.run(_streams(box, key, 30))
    assert sorted(status for status, _ in answers) == [200] * 3 + [402] * 27
    assert box.balance(poor) == (EACH // 2, 0)
    box.cli("doctor")
