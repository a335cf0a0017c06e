"""A call whose settlement the database refused (and then its release too) leaves its hold to
the sweep, which must free it even while something still refers to the call: in a server the
error that ended the call keeps it alive in a reference cycle (its traceback's frames and the
call's task), which only the garbage collector frees, and a serving box collects rarely
(server.py YOUNG_COLLECTION_AFTER). Seen on PostgreSQL boxes whose sessions were dropped under
traffic: holds of calls answered 503 stayed for minutes, blocking their users' credit."""

from __future__ import annotations

import asyncio
from pathlib import Path

import apsw
import pytest

from codelace_box.accounts.keys import create_key
from codelace_box.accounts.users import create_user
from codelace_box.billing.ledger import find_mismatches, post_entry
from codelace_box.catalog import models
from codelace_box.catalog import providers as catalog
from codelace_box.db.models import Hold, UsageRecord, User
from codelace_box.errors import CodelaceError
from codelace_box.gateway.client import UpstreamClient
from codelace_box.gateway.pipeline import Gateway, GatewaySettings
from codelace_box.gateway.request import prepare_call
from codelace_box.gateway.routing import RouteTable
from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.pg_cluster import wanted_engine

pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.skipif(wanted_engine() == "postgres", reason="locks the SQLite file"),
]
BODY = {"model": "up/m1", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 50}


async def test_the_sweep_frees_the_hold_of_a_call_that_could_not_settle(
    migrated_db: Path, fake: FakeOpenAI
) -> None:
    catalog.add_provider("up", "openai", "secret", "sk-up-key-0000", fake.base_url)
    models.set_model("up/m1", "2", "8")
    user = create_user("unsettled@money.test")
    post_entry(user.id, 10**9, "admin", "seed", "seed-unsettled")
    key_id = create_key(user.id).key.id
    gateway = Gateway(RouteTable("secret"), UpstreamClient(5.0, 5.0), GatewaySettings())
    await gateway.client.start()
    fake.default = Reply(delay_before=0.5)
    call = prepare_call(gateway.routes, BODY, 80, request_id="req-unsettled", user_id=user.id,
                        key_id=key_id)  # fmt: skip
    task = asyncio.ensure_future(gateway.complete(call))
    while not Hold.select().count():
        await asyncio.sleep(0.01)
    other = apsw.Connection(str(migrated_db))  # (one SQLite library: its locks are seen here)
    other.execute("BEGIN IMMEDIATE")  # the settlement and the release wait, then fail (busy)
    failed = False
    try:
        await task
    except CodelaceError as exc:
        failed = exc.status == 503
    other.execute("ROLLBACK")
    other.close()
    assert failed, "the call is a 503: its settlement could not be written"
    assert Hold.select().count() == 1, "the release failed too: the sweep's to free"
    gateway.sweep_holds(min_age_sec=0)  # `call` is still referred to (here, by this test)
    for _ in range(3):
        await asyncio.sleep(0)
    assert Hold.select().count() == 0, "the hold of a call that can no longer settle is freed"
    fresh = User.get_by_id(user.id)
    assert (fresh.balance_nanos, fresh.held_nanos) == (10**9, 0)
    assert UsageRecord.select().count() == 0 and find_mismatches() == []
    await gateway.client.close()
