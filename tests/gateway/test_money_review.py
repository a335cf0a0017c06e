"""Adversarial checks of the money paths: every way a request could be charged twice, charged
nothing for work done, overspend, or leave a hold behind."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

from codelace_box.accounts.keys import create_key
from codelace_box.accounts.users import create_user
from codelace_box.billing.ledger import find_mismatches, ledger_sum, post_entry
from codelace_box.catalog import models
from codelace_box.catalog import providers as catalog
from codelace_box.db.batch import WriteBatch
from codelace_box.db.models import Hold, UsageRecord, User
from codelace_box.db.sqlite_file import BUSY_TIMEOUT_SEC
from codelace_box.gateway.charges import MAX_STORED_TOKENS
from codelace_box.gateway.client import UpstreamClient
from codelace_box.gateway.metering import (
    Settlement,
    admit,
    admit_in,
    settle,
    settle_in,
)
from codelace_box.gateway.pipeline import Gateway, GatewaySettings
from codelace_box.gateway.request import ChatCall, prepare_call
from codelace_box.gateway.routing import RouteTable
from codelace_box.live_refs import LiveRefs
from codelace_box.reports.usage import usage_summary
from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.gateway.conftest import IN_PRICE, MODEL, OUT_PRICE, Box, BoxFactory, cost_nanos
from tests.pg_cluster import wanted_engine

pytestmark = pytest.mark.timeout(90)
HELLO = [{"role": "user", "content": "Say hello"}]


@pytest.fixture(scope="module")
def box(box_factory: BoxFactory) -> Box:
    return box_factory()


@pytest.fixture
def db(migrated_db: Path) -> Path:
    return migrated_db


def _item(request_id: str, user_id: int, tokens_in: int, tokens_out: int) -> Settlement:
    return Settlement(
        request_id=request_id, user_id=user_id, key_id=None, model="acme/m1", provider="acme",
        upstream_model="m1", input_per_1m_nanos=1_000_000, output_per_1m_nanos=1_000_000,
        input_tokens=tokens_in, output_tokens=tokens_out, status="ok", stream=False,
    )  # fmt: skip


def test_absurd_upstream_token_counts_still_settle(db: Path) -> None:
    """An upstream reporting more tokens than SQLite can store must not leave the hold taken
    (the balance blocked until a restart) and the work unbilled: it is charged its hold (the
    most a request can cost) and the hold is released."""
    user = create_user("huge@money.test")
    post_entry(user.id, 10_000, "admin", "seed", "seed-huge")
    admit(user.id, "huge", 3_000)
    assert settle(_item("huge", user.id, 10**20, 10**30)) == 3_000
    fresh = User.get_by_id(user.id)
    assert (fresh.balance_nanos, fresh.held_nanos) == (7_000, 0)
    assert Hold.select().count() == 0
    assert ledger_sum(user.id) == 7_000
    assert find_mismatches() == []
    admit(user.id, "huge-2", 0)
    assert settle(_item("huge-2", user.id, 10**19, -5)) == 0
    summary = usage_summary(user.id, 10)  # the sums of absurd rows still add up
    assert summary.request_count == 2 and summary.output_tokens >= 0
    # stored as the usage row keeps them: the absurd count at its bound, the negative one as 0
    assert UsageRecord.get(UsageRecord.request_id == "huge-2").output_tokens == 0
    assert summary.output_tokens == MAX_STORED_TOKENS
    assert summary.cost_nanos == 3_000


@pytest.mark.parametrize("stream", [False, True])
def test_absurd_upstream_usage_through_the_box(box: Box, fake: FakeOpenAI, stream: bool) -> None:
    """The whole box: an upstream claiming 10^20 tokens is answered, the account is charged
    the hold (never more), the rest is logged as the operator's loss, and no hold is left
    blocking the balance."""
    email, key = box.new_user("1")
    fake.push(Reply(prompt_tokens=10**20))
    with box.http(key) as http:
        body: dict[str, object] = {"model": MODEL, "messages": HELLO, "max_tokens": 10}
        if stream:
            body["stream"] = True
        answer = http.post("/v1/chat/completions", json=body)
        assert answer.status_code == 200, answer.text
        if stream:
            assert answer.text.rstrip().endswith("data: [DONE]"), answer.text
    request_id = answer.headers["x-request-id"]
    assert box.query("SELECT COUNT(*) FROM hold WHERE request_id = ?", request_id) == [(0,)]
    row = box.usage_row(request_id)
    assert row["status"] == "ok" and 0 < row["cost_nanos"] == row["hold_nanos"] < 10**9
    assert box.balance(email) == (10**9 - row["cost_nanos"], 0)
    box.server.wait_for_log(rf"request {request_id}: .* the operator's loss is \d+ nano-USD")


HI_BODY: dict[str, Any] = {"model": "acme/m1", "messages": [{"role": "user", "content": "hi"}]}


def _gateway_and_funded_user(email: str) -> tuple[Gateway, User, int]:
    """A gateway of this process with model acme/m1, and a user with $1 and a key."""
    catalog.add_provider("acme", "openai", "secret", "sk-first-key-000", "http://127.0.0.1:9/v1")
    models.set_model("acme/m1", "2", "8")
    user = create_user(email)
    post_entry(user.id, 10**9, "admin", "seed", f"seed-{email}")
    key_id = create_key(user.id).key.id
    gateway = Gateway(RouteTable("secret"), UpstreamClient(1.0, 1.0), GatewaySettings())
    return gateway, user, key_id


@pytest.mark.parametrize("turns", [1, 2], ids=["admit-queued", "admit-committed"])
async def test_client_leaving_during_admission_leaves_no_hold(db: Path, turns: int) -> None:
    """Cancelled while its admission is queued, or after it committed but before the handler
    resumed: the hold is given back, nothing is charged, and the request is recorded."""
    gateway, user, key_id = _gateway_and_funded_user("gone@money.test")
    task = asyncio.ensure_future(
        gateway.prepare(HI_BODY, 60, request_id="req-gone", user_id=user.id, key_id=key_id)
    )
    for _ in range(turns):
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(3):
        await asyncio.sleep(0)
    assert Hold.select().count() == 0
    fresh = User.get_by_id(user.id)
    assert (fresh.balance_nanos, fresh.held_nanos) == (10**9, 0)
    row = UsageRecord.get(UsageRecord.request_id == "req-gone")
    assert (row.status, row.cost_nanos) == ("abandoned", 0)
    assert find_mismatches() == []


async def test_a_plain_call_left_while_its_admission_is_queued_never_calls_upstream(
    db: Path,
) -> None:
    """Gateway.complete queues the admission and starts the call's task behind it (the upstream
    called in the admission's own loop turn): a client gone before that turn gets its hold
    back, nothing charged, the request recorded as abandoned, and the upstream (here a closed
    port, which a call would have reached and failed on) never called."""
    gateway, user, key_id = _gateway_and_funded_user("queued@money.test")
    call = prepare_call(gateway.routes, HI_BODY, 60, request_id="req-queued", user_id=user.id,
                        key_id=key_id)  # fmt: skip
    task = asyncio.ensure_future(gateway.complete(call))
    await asyncio.sleep(0)  # the handler's step: the admission queued, the call's task made
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(4):
        await asyncio.sleep(0)
    assert Hold.select().count() == 0
    fresh = User.get_by_id(user.id)
    assert (fresh.balance_nanos, fresh.held_nanos) == (10**9, 0)
    row = UsageRecord.get(UsageRecord.request_id == "req-queued")
    assert (row.status, row.error_code, row.cost_nanos) == ("abandoned", "client_closed", 0)
    assert find_mismatches() == []


async def test_a_stream_left_while_its_admission_is_queued_never_calls_upstream(
    db: Path,
) -> None:
    """Gateway.open_stream queues the admission and starts the stream's task behind it (the
    upstream opened in the admission's own loop turn): a client gone before that turn gets
    its hold back, nothing charged, the request recorded as abandoned, and the upstream (a
    closed port, which an opening would have reached and failed on) never called."""
    gateway, user, key_id = _gateway_and_funded_user("queued-stream@money.test")
    call = prepare_call(gateway.routes, HI_BODY | {"stream": True}, 60,
                        request_id="req-queued-stream", user_id=user.id, key_id=key_id)  # fmt: skip
    task = asyncio.ensure_future(gateway.open_stream(call))
    await asyncio.sleep(0)  # the handler's step: the admission queued, the stream's task made
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await gateway.drain(5.0, 5.0)  # the stream's task, and the writes it queued
    assert Hold.select().count() == 0
    fresh = User.get_by_id(user.id)
    assert (fresh.balance_nanos, fresh.held_nanos) == (10**9, 0)
    row = UsageRecord.get(UsageRecord.request_id == "req-queued-stream")
    assert (row.status, row.error_code, row.cost_nanos) == ("abandoned", "client_closed", 0)
    assert find_mismatches() == []


async def test_a_stream_told_its_relay_as_its_client_left_is_read_on_and_charged(
    db: Path, fake: FakeOpenAI
) -> None:
    """The stream's task tells the handler its relay through a future; a handler cancelled in
    the turn between (the relay told, the handler not yet resumed) must not drop the relay:
    the upstream already works on the call, so it is read on and charged what the provider
    reports, the row abandoned, the hold settled."""
    gateway, user, key_id = _gateway_and_funded_user("told@money.test")
    catalog.add_provider("up", "openai", "secret", "sk-up-key-0000", fake.base_url)
    models.set_model("up/m1", "2", "8")
    body = {"model": "up/m1", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    call = prepare_call(gateway.routes, body, 60, request_id="req-told", user_id=user.id,
                        key_id=key_id)  # fmt: skip
    await gateway.client.start()
    task = asyncio.ensure_future(gateway.open_stream(call))
    while not task.done():  # each loop turn: is the relay told, the handler not resumed?
        waiting = cast(Any, task)._fut_waiter  # the future the handler awaits (asyncio's)
        if waiting is not None and waiting.done() and waiting.exception() is None:
            task.cancel()
            break
        await asyncio.sleep(0)
    with pytest.raises(asyncio.CancelledError):
        await task
    await gateway.drain(10.0, 10.0)
    assert len(fake.requests) == 1 and Hold.select().count() == 0
    row = UsageRecord.get(UsageRecord.request_id == "req-told")
    assert (row.status, row.error_code) == ("abandoned", "client_closed")
    assert row.cost_nanos > 0 and row.output_tokens > 0
    fresh = User.get_by_id(user.id)
    assert (fresh.balance_nanos, fresh.held_nanos) == (10**9 - row.cost_nanos, 0)
    assert find_mismatches() == []
    await gateway.client.close()


async def test_the_sweep_frees_a_hold_whose_call_is_gone_and_keeps_live_ones(db: Path) -> None:
    """A call that ended without settling (its settlement refused by a locked database) must
    not keep the user's credit reserved until a restart; a call still running keeps its hold."""
    gateway, user, key_id = _gateway_and_funded_user("leak@money.test")
    live = await gateway.prepare(HI_BODY, 60, request_id="req-live", user_id=user.id, key_id=key_id)
    await gateway.prepare(HI_BODY, 60, request_id="req-leak", user_id=user.id, key_id=key_id)
    assert User.get_by_id(user.id).held_nanos == 2 * live.hold_nanos
    gateway.sweep_holds(min_age_sec=3600)  # young holds are never touched
    gateway.sweep_holds(min_age_sec=0)
    for _ in range(3):
        await asyncio.sleep(0)
    assert [hold.request_id for hold in Hold.select()] == ["req-live"]
    assert User.get_by_id(user.id).held_nanos == live.hold_nanos
    assert find_mismatches() == []


class _Call:
    """What LiveRefs keeps of a call: its request id, and that it can be referred to weakly."""

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id


def test_the_registry_of_running_calls_forgets_the_gone_ones_and_keeps_the_others() -> None:
    """The sweep's registry of the calls that may still settle (live_refs.LiveRefs; the
    server's requests in flight are kept the same way): as calls come and go, the gone ones
    are dropped (it stays small) and one still referred to stays, however many came after
    it; going over it gives the live ones only."""
    calls: LiveRefs[ChatCall] = LiveRefs()
    running = [cast(ChatCall, _Call(f"run-{n}")) for n in range(3)]
    for call in running:
        calls.add(call.request_id, call)
    for n in range(1000):
        calls.add(f"gone-{n}", cast(ChatCall, _Call(f"gone-{n}")))  # nothing refers to it after
    assert all(call.request_id in calls for call in running)
    assert "gone-5" not in calls and "gone-999" not in calls and "never" not in calls
    assert len(calls._refs) < 100
    assert sorted(call.request_id for call in calls) == ["run-0", "run-1", "run-2"]


async def test_one_failing_settlement_does_not_touch_the_rest_of_its_batch(db: Path) -> None:
    """Group commit: a settlement that fails rolls back only itself (its hold stays, nothing
    half-written), the others in the same transaction are charged exactly once."""
    user = create_user("batch@money.test")
    post_entry(user.id, 100_000, "admin", "seed", "seed-batch")
    for request_id in ("s1", "s2", "s3"):
        admit(user.id, request_id, 10_000)
    post_entry(user.id, 0, "admin", "a key that collides", "usage:s2")
    batch = WriteBatch()
    futures = [
        batch.submit(partial(settle_in, item=_item(r, user.id, 0, 1_000)))
        for r in ("s1", "s2", "s3")
    ]
    again = batch.submit(partial(settle_in, item=_item("s1", user.id, 0, 1_000)))
    late = batch.submit(partial(admit_in, user_id=user.id, request_id="s4", amount_nanos=5))
    assert await futures[0] == 1_000
    with pytest.raises(Exception, match=r"UNIQUE|duplicate key"):
        await futures[1]
    assert await futures[2] == 1_000
    assert await again is None, "settled once only, even within one batch"
    assert await late is None
    assert sorted(h.request_id for h in Hold.select()) == ["s2", "s4"]
    fresh = User.get_by_id(user.id)
    assert (fresh.balance_nanos, fresh.held_nanos) == (98_000, 10_005)
    assert UsageRecord.select().count() == 2
    assert find_mismatches() == []


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.skipif(wanted_engine() == "postgres", reason="SQLite's write lock and busy timeout")
def test_settlement_on_a_locked_database_does_not_strand_the_hold(
    box: Box, fake: FakeOpenAI, stream: bool
) -> None:
    """Another process holds the write lock past busy_timeout exactly when a call settles.
    The hold must not stay taken (shrinking the balance until the next restart): a plain call
    is a 503 that costs nothing; a stream, whose output the client already has, is settled
    once the lock is gone and ends normally."""
    email, key = box.new_user("1")
    start = box.balance(email)[0]
    fake.push(Reply(delay_before=1.5))
    body: dict[str, object] = {"model": MODEL, "messages": HELLO, "stream": stream}
    answer: list[httpx.Response] = []

    def call() -> None:
        with box.http(key) as http:
            answer.append(http.post("/v1/chat/completions", json=body, timeout=40))

    caller = threading.Thread(target=call)
    caller.start()
    deadline = time.monotonic() + 10
    while box.balance(email)[1] == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert box.balance(email)[1] > 0, "admitted"
    locker = sqlite3.connect(box.db_path, timeout=10, isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")  # past the box's 10 s busy_timeout
    time.sleep(BUSY_TIMEOUT_SEC + 3.5)  # the settlement starts 1.5 s in: it gives up first
    locker.execute("COMMIT")
    locker.close()
    caller.join(30)
    assert answer, "the client got an answer"
    deadline = time.monotonic() + 15
    while box.balance(email)[1] and time.monotonic() < deadline:
        time.sleep(0.05)
    rows = box.query(
        'SELECT u.status, u.cost_nanos FROM usage_record u JOIN "user" s ON s.id = u.user_id'
        " WHERE s.email = ?",
        email,
    )
    if stream:
        assert answer[0].text.rstrip().endswith("data: [DONE]"), answer[0].text
        cost = cost_nanos(11, 5, IN_PRICE, OUT_PRICE)
        assert rows == [("ok", cost)]
        assert box.balance(email) == (start - cost, 0), "charged once, the hold released"
    else:
        assert answer[0].status_code == 503, answer[0].text
        assert rows == [("error", 0)]
        assert box.balance(email) == (start, 0), "nothing charged, the hold released"
