"""The statements a settlement runs on SQLite (gateway/metering.py `settle_steps`): the charge
is the cost, at most the hold (which the account covered when it was taken), so a settlement
reads no account balance, neither with the hold it takes nor apart."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest

from codelace_box.billing.ledger import find_mismatches, post_entry
from codelace_box.db.batch import WriteBatch
from codelace_box.db.core import database
from codelace_box.db.models import User
from codelace_box.gateway.metering import admit, settle, settle_steps
from tests.gateway.batches import funded_user, outcomes, priced_settlement
from tests.pg_cluster import wanted_engine

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(wanted_engine() == "postgres", reason="SQLite's statements"),
]


@pytest.fixture
def statements(migrated_db: Any) -> Iterator[list[str]]:
    """The text of every statement the connection runs from now on."""
    seen: list[str] = []
    conn = database.connection()

    def trace(_cursor: Any, sql: str, _bindings: Any) -> bool:
        seen.append(sql)
        return True

    conn.exec_trace = trace
    yield seen
    conn.exec_trace = None


def _reads_of_the_account(seen: list[str]) -> list[str]:
    return [sql for sql in seen if sql.startswith("SELECT balance_nanos")]


def test_a_settlement_reads_no_account_balance(statements: list[str]) -> None:
    user_id = funded_user("room@example.com", 100_000)
    admit(user_id, "c1", 20_000)
    statements.clear()
    assert settle(priced_settlement("c1", user_id, 5_000)) == 5_000
    assert _reads_of_the_account(statements) == []
    taken = [sql for sql in statements if sql.startswith("DELETE FROM hold")]
    assert len(taken) == 1 and "balance_nanos" not in taken[0], statements
    user = User.get_by_id(user_id)
    assert (user.balance_nanos, user.held_nanos) == (95_000, 0)
    assert find_mismatches() == []


async def test_a_batch_below_its_holds_charges_without_reading_the_account_again(
    statements: list[str],
) -> None:
    """A balance a reversal took below the open holds: each settlement charges its cost (at
    most its hold, which the balance covered when it was taken) and reads the account no
    more than with its hold."""
    user_id = funded_user("again@example.com", 100_000)
    admit(user_id, "b1", 40_000)
    admit(user_id, "b2", 40_000)
    post_entry(user_id, -50_000, "refund", "a dispute", "debit-again")  # 50,000 for 80,000
    statements.clear()
    batch = WriteBatch()
    futures = [
        batch.submit(partial(settle_steps, item=priced_settlement(rid, user_id, 30_000)))
        for rid in ("b1", "b2")
    ]
    assert await outcomes(futures) == [30_000, 30_000]
    assert _reads_of_the_account(statements) == []
    user = User.get_by_id(user_id)
    assert (user.balance_nanos, user.held_nanos) == (-10_000, 0)
    assert find_mismatches() == []
