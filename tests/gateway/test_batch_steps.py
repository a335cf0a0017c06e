"""The group commit running admissions and settlements as steps (db/batch.py): a batch's
writes run in turns (on PostgreSQL on the write thread, their answers sharing round trips),
and again each in its savepoint once one failed. Either way each write lands once, a refusal
fails alone, and a batch charges no more than the requests one after the other would."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

import pytest

from codelace_box.billing.ledger import find_mismatches, ledger_sum, post_entry
from codelace_box.db.batch import WriteBatch
from codelace_box.db.models import Hold, LedgerEntry, User
from codelace_box.errors import InsufficientCredits
from codelace_box.gateway.metering import admit, admit_steps, settle_steps
from tests.gateway.batches import funded_user, outcomes, priced_settlement

pytestmark = pytest.mark.timeout(60)


async def test_a_batch_of_one_accounts_writes_lands_each_once_and_a_refusal_alone(
    batch: WriteBatch,
) -> None:
    user_id = funded_user("steps@example.com", 100_000)
    for request_id in ("s1", "s2", "s3"):
        admit(user_id, request_id, 20_000)  # 60,000 held, 40,000 free
    futures: list[asyncio.Future[Any]] = [
        batch.submit(partial(settle_steps, item=priced_settlement("s1", user_id, 5_000))),
        batch.submit(partial(admit_steps, user_id=user_id, request_id="a1", amount_nanos=30_000)),
        batch.submit(partial(settle_steps, item=priced_settlement("s1", user_id, 5_000))),  # again
        batch.submit(partial(admit_steps, user_id=user_id, request_id="a2", amount_nanos=30_000)),
        batch.submit(partial(settle_steps, item=priced_settlement("s2", user_id, 7_000))),
        batch.submit(partial(admit_steps, user_id=user_id, request_id="a3", amount_nanos=1_000)),
    ]
    s1, a1, again, a2, s2, a3 = await outcomes(futures)
    assert (s1, a1, again, s2, a3) == (5_000, None, None, 7_000, None)
    assert isinstance(a2, InsufficientCredits), a2  # 40,000 - 30,000 free when it came
    assert sorted(h.request_id for h in Hold.select()) == ["a1", "a3", "s3"]
    user = User.get_by_id(user_id)
    assert (user.balance_nanos, user.held_nanos) == (88_000, 51_000)
    assert ledger_sum(user_id) == 88_000
    usage = LedgerEntry.select().where(LedgerEntry.kind == "usage")
    assert sorted(e.idempotency_key for e in usage) == ["usage:s1", "usage:s2"]
    assert find_mismatches() == []


async def test_settlements_of_an_account_below_its_holds_charge_their_costs(
    batch: WriteBatch,
) -> None:
    """A reversal (a refund, a dispute: an unguarded debit) left the balance below the open
    holds: each settlement still charges its cost, the balance going below zero as had the
    reversal come after the calls (capped by what the account covered, the calls in flight
    were charged less, or nothing)."""
    user_id = funded_user("below@example.com", 100_000)
    admit(user_id, "r1", 40_000)
    admit(user_id, "r2", 40_000)
    post_entry(user_id, -50_000, "refund", "a dispute", "debit-below")  # 50,000 for 80,000 held
    futures = [
        batch.submit(partial(settle_steps, item=priced_settlement("r1", user_id, 30_000))),
        batch.submit(partial(settle_steps, item=priced_settlement("r2", user_id, 30_000))),
    ]
    assert await outcomes(futures) == [30_000, 30_000]
    user = User.get_by_id(user_id)
    assert (user.balance_nanos, user.held_nanos) == (-10_000, 0)
    assert Hold.select().count() == 0
    assert find_mismatches() == []
