"""An account's payment history (the customer API and the portal read it through
billing.payments.payment_history): read on the database thread, not the event loop, and along
the index in listing order (migration 20), so a page reads `limit` rows however many payments
the account has. On either engine."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from codelace_box.accounts.users import create_user
from codelace_box.billing.payments import list_payments, payment_history
from codelace_box.db.core import write_transaction
from codelace_box.db.models import Payment
from codelace_box.db.offload import start_db_thread, stop_db_thread
from codelace_box.reports import payments as report
from tests.query_plan import query_plan

T0 = datetime(2026, 3, 1)


def _pay(user_id: int, n: int) -> Payment:
    return Payment.create(
        user=user_id, amount_nanos=10**9 * (n + 1), kind="topup", status="completed",
        created_at=T0 + timedelta(minutes=n),
    )  # fmt: skip


async def test_the_history_is_read_on_the_database_thread(migrated_db: Path) -> None:
    alice = create_user("a@x.test").id
    first = [_pay(alice, n).uuid for n in range(3)]
    with pytest.raises(RuntimeError, match="database thread is not started"):
        await payment_history(alice)  # it never falls back to the loop's connection
    start_db_thread()
    try:
        with write_transaction():  # open on this (the loop's) connection, not committed
            late = _pay(alice, 3).uuid
            on_loop = [p.uuid for p in list_payments(alice)]
            off_loop = [p.uuid for p in await payment_history(alice)]
        assert on_loop == [late, *reversed(first)]  # the loop's connection sees its write
        assert off_loop == list(reversed(first))  # another connection: not yet committed
        assert [p.uuid for p in await payment_history(alice, 2)] == [late, first[2]]
    finally:
        stop_db_thread()


@pytest.mark.parametrize("whose", ["account", "account on the dashboard", "everyone"])
def test_a_page_is_read_along_the_index_newest_first(migrated_db: Path, whose: str) -> None:
    alice, bob = create_user("a@x.test").id, create_user("b@x.test").id
    for n in range(12):
        _pay(alice if n % 3 else bob, n)
    if whose == "account":
        sql, params = (
            Payment.select()
            .where(Payment.user == alice)
            .order_by(Payment.created_at.desc(), Payment.id.desc())
            .limit(5)
            .sql()
        )  # what list_payments runs
        sql = sql.replace("%s", "?")  # PostgreSQL's driver marks; query_all takes `?`
        index = "payment_user_id_created_at_id"
        assert [p.amount_nanos // 10**9 for p in list_payments(alice, 5)] == [12, 11, 9, 8, 6]
    elif whose == "account on the dashboard":
        sql = report._PAYMENTS_SQL + " AND p.user_id = ? ORDER BY p.created_at DESC, p.id DESC"
        sql, params, index = sql + " LIMIT ?", [alice, 5], "payment_user_id_created_at_id"
        shown = report.list_payments(5, user_id=alice)
        assert [p.amount_nanos // 10**9 for p in shown] == [12, 11, 9, 8, 6]
    else:
        sql = report._PAYMENTS_SQL + " ORDER BY p.created_at DESC, p.id DESC LIMIT ?"
        params, index = [5], "payment_created_at_id"  # the dashboard's list of everyone's
        assert [p.amount_nanos // 10**9 for p in report.list_payments(5)] == [12, 11, 10, 9, 8]
    plan = query_plan(sql, tuple(params))
    assert index in plan, plan
    assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan  # no sort of every payment
