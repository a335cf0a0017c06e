"""An account's ledger newest first (the dashboard's account page: billing.ledger.entries_for)
is read along an index in that order (migration 27 on PostgreSQL), so a page reads its rows
however many entries other accounts wrote after them. On either engine."""

from __future__ import annotations

from pathlib import Path

from codelace_box.accounts.users import create_user
from codelace_box.billing.ledger import append_entry_in, entries_for
from codelace_box.db.core import POSTGRES, connection, engine, utcnow, write_transaction
from codelace_box.db.models import LedgerEntry
from tests.query_plan import query_plan


def _entry(user_id: int, n: int) -> None:
    with write_transaction():
        append_entry_in(connection(), user_id, n, "admin", "seed", f"seed-{n}", str(utcnow()))


def test_an_accounts_ledger_is_read_along_the_index_newest_first(migrated_db: Path) -> None:
    alice, bob = create_user("a@x.test").id, create_user("b@x.test").id
    for n in range(1, 13):
        _entry(alice if n % 3 else bob, n)
    assert [e.amount_nanos for e in entries_for(alice, 4)] == [11, 10, 8, 7]
    sql, params = (
        LedgerEntry.select()
        .where(LedgerEntry.user == alice)
        .order_by(LedgerEntry.id.desc())
        .limit(4)
        .sql()
    )  # what entries_for runs
    plan = query_plan(sql.replace("%s", "?"), tuple(params))  # query_all takes `?` marks
    if engine() == POSTGRES:
        # Not the primary key backwards with a filter (every later entry of every other
        # account read: 0.1 s for 300,000), nor every entry of the account sorted:
        assert "ledger_entry_user_id_id" in plan and "Sort" not in plan, plan
        return
    assert "ledger_entry_user_id" in plan and "TEMP B-TREE" not in plan, plan
