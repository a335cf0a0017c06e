"""Bursts of streamed calls on all three streamed routes whose clients leave at every moment of
a stream's life (while admitted, while the upstream connects, as the relay is handed over,
mid-stream, before the tail) or read to the end, against upstreams that also fail (a 500 before
the first byte retried on another key, a connection cut mid-stream, silence past the read
timeout). Afterwards: every call settled exactly once (one usage row each, none charged beyond
its hold, each debited once), nothing held, no account below zero, a stream read to its end had
its usage row committed before its final bytes came, and `doctor` passes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.gateway.conftest import MODEL, MODEL_PRICES, PROVIDER_ADD, Box, BoxFactory
from tests.pg_cluster import SHARED_SECRET
from tests.support import TLS, ServerProcess, free_port, write_config

pytestmark = pytest.mark.timeout(300)
ROUTES = ("/v1/chat/completions", "/v1/messages", "/v1/responses")
MOMENTS = ("admission", "connect", "handed", "mid", "tail", "end", "end")
PIECES = [f"w{n} " for n in range(12)]
KEYS = ("sk-fake-key-0001", "sk-fake-key-0002")
LEAVE_AFTER = {"admission": 0.003, "connect": 0.15}  # s; the upstream answers after 0.4 s
FINAL = (b"[DONE]", b"message_stop", b"response.completed")


@dataclass
class Outcome:
    request_id: str | None
    route: str
    moment: str
    status: int = 0
    row_before_end: bool | None = None  # for a stream read to its end: its row there by then
    error: str | None = None  # a refusal's error code, from its JSON body


def body_for(route: str, tag: str) -> dict[str, Any]:
    hello = [{"role": "user", "content": "hi"}]
    if route == "/v1/messages":
        return {"model": MODEL, "max_tokens": 50, "messages": hello, "stream": True}
    if route == "/v1/responses":
        return {"model": MODEL, "input": "hi", "max_output_tokens": 50, "stream": True}
    return {"model": MODEL, "messages": hello, "max_tokens": 50, "stream": True, "user": tag,
            "stream_options": {"include_usage": True}}  # fmt: skip


def reply_for(pick: random.Random, moment: str) -> Reply:
    """What the upstream does: slow to answer when the client leaves while it connects, else
    at random well, failing first, dying mid-stream or going silent."""
    if moment == "connect":
        return Reply(pieces=PIECES, delay_before=0.4, piece_delay=0.01)
    kind = pick.choice(("ok", "ok", "ok", "drop", "silent", "slow"))
    if kind == "drop":
        return Reply(pieces=PIECES, drop_after=3, piece_delay=0.01)
    if kind == "silent":
        return Reply(pieces=PIECES, hang_after=4, piece_delay=0.01)
    return Reply(pieces=PIECES, piece_delay=0.02 if kind == "slow" else 0.005)


async def _row_exists(box: Box, request_id: str) -> bool:
    sql = "SELECT 1 FROM usage_record WHERE request_id = ?"
    return bool(await asyncio.to_thread(box.query, sql, request_id))


async def one_call(box: Box, key: str, route: str, moment: str, tag: str) -> Outcome:
    """One stream on a connection of its own, closed at `moment`."""
    outcome = Outcome(None, route, moment)
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=box.url, verify=TLS, limits=limits,
                                 timeout=httpx.Timeout(60, connect=60)) as client:  # fmt: skip
        headers = {"authorization": f"Bearer {key}"}
        request = client.stream("POST", route, json=body_for(route, tag), headers=headers)
        if moment in LEAVE_AFTER:  # while admitted, or while the upstream connects
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(LEAVE_AFTER[moment]), request as response:
                    if response.status_code != 200:
                        outcome.error = await _error_code(response)
                    outcome.status = response.status_code  # (left before it: 0)
            return outcome
        async with request as response:
            outcome.status = response.status_code
            outcome.request_id = response.headers.get("x-request-id")
            if response.status_code != 200:
                outcome.error = await _error_code(response)
            elif moment != "handed":
                await _read(box, response, moment, outcome)
    return outcome


async def _error_code(response: httpx.Response) -> str:
    """The code of a refusal before any byte: a plain JSON error, not a stream."""
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = json.loads(await response.aread())
    return str(body["error"]["code"] if "code" in body["error"] else body["error"]["type"])


async def _read(box: Box, response: httpx.Response, moment: str, outcome: Outcome) -> None:
    """Read the stream to `moment`'s point; at its end, see the usage row already there."""
    reads, seen = 0, b""
    async for chunk in response.aiter_bytes():
        reads += 1
        seen += chunk
        if moment == "mid" and reads >= 2:
            return
        if moment == "tail" and seen.count(b"w10") >= 1:
            return
        if any(final in seen for final in FINAL):  # sent only once the call settled
            assert outcome.request_id is not None
            outcome.row_before_end = await _row_exists(box, outcome.request_id)
            return


async def burst(
    box: Box, keys: list[str], count: int, seed: int, fake: FakeOpenAI
) -> list[Outcome]:
    pick = random.Random(seed)
    plans = []
    for n in range(count):
        route, moment, tag = pick.choice(ROUTES), pick.choice(MOMENTS), f"t{seed}-{n}"
        reply = reply_for(pick, moment)
        if route == "/v1/chat/completions":
            fake.tagged[tag] = reply
        else:
            fake.push(reply)
        plans.append((pick.choice(keys), route, moment, tag))
    gate = asyncio.Semaphore(24)

    async def limited(plan: tuple[str, str, str, str]) -> Outcome:
        async with gate:
            return await one_call(box, plan[0], plan[1], plan[2], plan[3])

    return await asyncio.gather(*(limited(plan) for plan in plans))


def settled_everything(box: Box, wait: float = 30.0) -> None:
    deadline = time.monotonic() + wait
    while box.query("SELECT COUNT(*) FROM hold")[0][0]:
        assert time.monotonic() < deadline, box.query("SELECT * FROM hold")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def box(box_factory: BoxFactory) -> Box:
    return box_factory(keys=KEYS, gateway={"read_timeout_sec": 1})


@pytest.fixture
def pg_box_two_keys(tmp_path: Path, pg_url: str, fake: FakeOpenAI) -> Iterator[Box]:
    """A box on PostgreSQL (its write thread commits after the loop's turn), as `box`."""
    port = free_port()
    config = write_config(tmp_path / "codelace.toml", {
        "server": {"host": "127.0.0.1", "port": port, "secret_key": SHARED_SECRET},
        "database": {"path": str(tmp_path / "data" / "codelace.db"), "url": pg_url},
        "gateway": {"read_timeout_sec": 1},
    })  # fmt: skip
    box = Box(None, config, Path(), fake)  # type: ignore[arg-type]
    box.cli(*PROVIDER_ADD, fake.base_url, "--key", KEYS[0])
    box.cli("providers", "key-add", "fake", "--key", KEYS[1])
    box.cli("models", "set", MODEL, *MODEL_PRICES, "--max-output-tokens", "1000")
    box.server = ServerProcess(config, port).start()
    try:
        yield box
    finally:
        box.server.stop()


def test_streams_left_at_every_moment_settle_exactly_once(box: Box, fake: FakeOpenAI) -> None:
    left_at_every_moment(box, fake)


def test_streams_left_at_every_moment_settle_exactly_once_on_postgresql(
    pg_box_two_keys: Box, fake: FakeOpenAI
) -> None:
    left_at_every_moment(pg_box_two_keys, fake)


def left_at_every_moment(box: Box, fake: FakeOpenAI) -> None:
    """240 streams at 24 at once, two accounts (one short of credit for them all), then the
    ledger checked."""
    rich_email, rich = box.new_user("5")
    poor_email, poor = box.new_user("0.004")  # a few streams' worst case at once, not all
    fake.push(Reply(status=500), Reply(status=500))  # the first two retried on the other key
    outcomes = asyncio.run(burst(box, [rich, rich, poor], 240, 7, fake))
    settled_everything(box)
    ended = [o for o in outcomes if o.row_before_end is not None]
    assert ended, "no stream was read to its end"
    assert all(o.row_before_end for o in ended), [o for o in ended if not o.row_before_end]
    # a 504: an upstream slower to start than the 1 s read timeout (0.4 s asked, more on a
    # loaded machine: seen in CI on PostgreSQL), free; its row is checked below as every row
    refused = {(o.status, o.error) for o in outcomes if o.status not in (0, 200, 504)}
    assert refused <= {(402, "insufficient_credits"), (402, "billing_error")}, refused
    rows = box.query("SELECT request_id, cost_nanos, hold_nanos FROM usage_record")
    debits = dict(box.query("SELECT idempotency_key, -amount_nanos FROM ledger_entry "
                            "WHERE kind = 'usage'"))  # fmt: skip
    assert len({r[0] for r in rows}) == len(rows)
    for request_id, cost, hold in rows:
        assert 0 <= int(cost) <= int(hold), request_id
        assert int(debits.pop(f"usage:{request_id}", 0)) == int(cost), request_id
    assert not {k: v for k, v in debits.items() if v}, debits
    told = {o.request_id for o in outcomes if o.request_id and o.status == 200}
    assert told <= {r[0] for r in rows}, told - {r[0] for r in rows}
    for email in (rich_email, poor_email):
        balance, held = box.balance(email)
        assert balance >= 0 and held == 0, (email, balance, held)
    box.cli("doctor")  # exits 0: every balance is its ledger's sum, nothing held


async def _streams_at_once(box: Box, key: str, count: int) -> list[tuple[int, str | None, str]]:
    """`count` chat streams at once, each read to its end: (status, error code, Retry-After)."""

    async def one(n: int) -> tuple[int, str | None, str]:
        async with httpx.AsyncClient(base_url=box.url, verify=TLS, timeout=60) as client:
            body = body_for(ROUTES[n % 3], f"c{n}")
            headers = {"authorization": f"Bearer {key}"}
            async with client.stream("POST", ROUTES[n % 3], json=body, headers=headers) as got:
                if got.status_code != 200:
                    after = got.headers.get("retry-after", "")
                    return got.status_code, await _error_code(got), after
                await got.aread()
                return 200, None, ""

    return await asyncio.gather(*(one(n) for n in range(count)))


def test_streams_past_the_concurrency_limit_are_429_json_errors(box: Box, fake: FakeOpenAI) -> None:
    """A stream's admission runs with its opening task queued behind it (Gateway.open_stream):
    one past the account's concurrency limit is still refused before any byte, as a plain JSON
    429 with Retry-After, its upstream never called; those admitted settle, nothing held."""
    email, key = box.new_user("5")
    box.cli("users", "limits", email, "--concurrent", "2")
    fake.default = Reply(pieces=PIECES, delay_before=0.5, piece_delay=0.01)
    try:
        outcomes = asyncio.run(_streams_at_once(box, key, 8))
    finally:
        fake.default = Reply()
    admitted = [o for o in outcomes if o[0] == 200]
    refused = [o for o in outcomes if o[0] != 200]
    assert 1 <= len(admitted) <= 2 and refused, outcomes
    assert {(status, code) for status, code, _ in refused} <= {
        (429, "rate_limited"), (429, "rate_limit_error")}, refused  # fmt: skip
    assert all(after for _, _, after in refused), refused
    settled_everything(box)
    rows = box.query('SELECT COUNT(*) FROM usage_record WHERE user_id = '
                     '(SELECT id FROM "user" WHERE email = ?)', email)  # fmt: skip
    assert rows[0][0] == len(admitted) == len(fake.requests)
    assert box.balance(email)[1] == 0
