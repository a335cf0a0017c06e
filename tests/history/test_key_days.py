"""Usage per key per day (migration 19, db/totals.py): the migration fills it from the usage
rows there are and counts what retention already took from an account's days under a key not
known; `usage report --by key` reads its whole days from it; `doctor` finds an account whose key
days disagree with its total, and a key whose days disagree with its own total (two keys' days
swapped left every account's sums right). On either engine."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from codelace_box.accounts.keys import create_key
from codelace_box.accounts.users import create_user
from codelace_box.billing.ledger import post_entry
from codelace_box.db.core import (
    close_database,
    open_database,
    query_all,
    schema_target,
    write_transaction,
)
from codelace_box.db.migrate import LATEST_VERSION, migrate
from codelace_box.db.migrations import MIGRATIONS, m0009_usage_totals, m0013_account_days
from codelace_box.db.models import SchemaMigration
from codelace_box.reports.spend_days import UNKNOWN_KEY, daily_spend_report
from codelace_box.reports.totals_check import totals_problems
from tests.history.test_history_units import add_row
from tests.pg_cluster import secret_for, wanted_engine
from tests.support import run_cli, sqlite_rows, write_config

DAY0 = datetime(2026, 3, 1)
COLUMNS = "requests, errors, input_tokens, output_tokens, cost_nanos"


def _at_version_18(tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    """The database as release 18 left it."""
    postgres = wanted_engine() == "postgres"
    db = open_database(request.getfixturevalue("pg_url") if postgres else tmp_path / "old.db")
    with write_transaction():
        db.create_tables([SchemaMigration])
        for version, module in MIGRATIONS[:18]:
            module.apply(schema_target(db))
            SchemaMigration.create(version=version, name=module.NAME)
    return db


def test_migration_19_fills_key_days_and_keeps_what_retention_took(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    db = _at_version_18(tmp_path, request)
    try:
        alice = create_user("a@x.test").id
        key = create_key(alice, "ci").key
        for n in range(12):  # three days; a key, then none, in turn
            when = DAY0 + timedelta(days=n % 3, hours=n)
            add_row(alice, when, n, counted=False, key=key.id if n % 2 else None)
        with write_transaction() as tx:  # the days as the release before kept them
            for statement in [*m0009_usage_totals.backfill(), m0013_account_days.backfill()]:
                tx.execute(statement)
            tx.execute("DELETE FROM usage_record WHERE created_at < ?", ("2026-03-01 05:00",))
        assert migrate(db) == list(range(19, LATEST_VERSION + 1))
        days = query_all(f"SELECT api_key_id, day, {COLUMNS} FROM key_day_usage")
        got = {(int(d[0]), str(d[1])): int(d[2]) for d in days}
        assert got == {  # n = 0 (no key) and 3 (the key) were deleted: key not known
            (key.id, "2026-03-01"): 1, (key.id, "2026-03-02"): 2, (key.id, "2026-03-03"): 2,
            (0, "2026-03-01"): 1, (0, "2026-03-02"): 2, (0, "2026-03-03"): 2,
            (-1, "2026-03-01"): 2,
        }  # fmt: skip
        unknown = next(d for d in days if int(d[0]) == -1)
        assert [int(v) for v in unknown[2:]] == [2, 0, 203, 23, 2003]  # rows 0 and 3's figures
        assert not [p for p in totals_problems() if "in the days" in p]
        report = daily_spend_report("key", DAY0, DAY0 + timedelta(days=3))
        assert {r.label: r.requests for r in report} == {
            key.key_prefix: 5,
            "(no key)": 5,
            UNKNOWN_KEY: 2,
        }
        with write_transaction() as tx:
            tx.execute("UPDATE key_day_usage SET requests = requests + 1 WHERE api_key_id = ?",
                       (key.id,))  # fmt: skip
        assert [p for p in totals_problems() if "in the days" in p]
    finally:
        close_database()


def _outside(db: Any, sql: str, params: tuple[Any, ...] = ()) -> None:
    """A statement on the database from outside the box (sqlite3's or psql's operator)."""
    if not str(db).startswith("postgresql://"):
        sqlite_rows(db, sql, params)
        return
    import psycopg

    with psycopg.connect(str(db), autocommit=True) as conn:
        conn.execute(sql.replace("?", "%s"), params)


def _requests(user_id: int, *keys: int) -> None:
    """One request of each key, on one day, counted in the totals and debited in the ledger."""
    for n, key in enumerate(keys):
        add_row(user_id, DAY0 + timedelta(hours=n), n, key=key)
        post_entry(user_id, -(1000 + n), "usage", f"request {n}", f"usage:req-{user_id}-{n}")


def _doctor(tmp_path: Path, db: Any) -> tuple[int, list[str]]:
    """`codelace-box doctor` on the database: its exit status and its MISMATCH lines."""
    where = str(db)
    sections: dict[str, dict[str, Any]] = {"database": {"path": where}}
    if where.startswith("postgresql://"):
        sections = {"database": {"url": where}, "server": {"secret_key": secret_for(where)}}
    ran = run_cli(write_config(tmp_path / "doctor.toml", sections), "doctor")
    return ran.returncode, [x for x in ran.stdout.splitlines() if x.startswith("MISMATCH")]


def test_doctor_finds_the_days_of_two_keys_of_one_account_swapped(
    tmp_path: Path, migrated_db: Any
) -> None:
    alice = create_user("swapped@x.test").id
    ci, laptop = create_key(alice, "ci").key, create_key(alice, "laptop").key
    _requests(alice, ci.id, ci.id, laptop.id, laptop.id, laptop.id)
    close_database()
    assert _doctor(tmp_path, migrated_db) == (0, [])
    for old, new in ((ci.id, -99), (laptop.id, ci.id), (-99, laptop.id)):
        _outside(migrated_db, "UPDATE key_day_usage SET api_key_id = ? WHERE api_key_id = ?",
                 (new, old))  # fmt: skip
    status, lines = _doctor(tmp_path, migrated_db)
    assert status == 1
    assert lines == [
        f"MISMATCH API key {ci.uuid} of account swapped@x.test: requests 2 != 3 in the days, "
        "input_tokens 201 != 309 in the days, output_tokens 21 != 39 in the days, "
        "cache_read_tokens 1 != 3 in the days, cost_nanos 2001 != 3009 in the days",
        f"MISMATCH API key {laptop.uuid} of account swapped@x.test: requests 3 != 2 in the "
        "days, input_tokens 309 != 201 in the days, output_tokens 39 != 21 in the days, "
        "cache_read_tokens 3 != 1 in the days, cost_nanos 3009 != 2001 in the days",
    ]


def test_doctor_takes_a_keys_days_short_by_what_was_counted_under_a_key_not_known(
    tmp_path: Path, migrated_db: Any
) -> None:
    """Migration 19 counted rows retention had deleted under key -1: their key's total still
    holds them, its days do not. That is no problem; a key short of more than that is."""
    alice = create_user("pruned@x.test").id
    ci = create_key(alice, "ci").key
    _requests(alice, ci.id, ci.id, ci.id)
    close_database()
    moved = ", ".join(f"{c} = {c} - ?" for c in COLUMNS.split(", "))
    _outside(migrated_db, f"UPDATE key_day_usage SET {moved} WHERE api_key_id = ?",
             (1, 0, 100, 10, 1000, ci.id))  # fmt: skip
    _outside(  # row n = 0 of the key, as migration 19 found it: taken by retention
        migrated_db,
        f"INSERT INTO key_day_usage (user_id, day, api_key_id, {COLUMNS}, cache_read_tokens, "
        "cache_write_tokens) VALUES (?, '2026-03-01', -1, 1, 0, 100, 10, 1000, 0, 0)",
        (alice,),
    )
    assert _doctor(tmp_path, migrated_db) == (0, [])
    _outside(migrated_db, "UPDATE key_day_usage SET requests = requests - 1 WHERE api_key_id = ?",
             (ci.id,))  # fmt: skip
    _outside(  # to the portal's (no key): the account's days still add up
        migrated_db,
        f"INSERT INTO key_day_usage (user_id, day, api_key_id, {COLUMNS}, cache_read_tokens, "
        "cache_write_tokens) VALUES (?, '2026-03-01', 0, 1, 0, 0, 0, 0, 0, 0)",
        (alice,),
    )
    status, lines = _doctor(tmp_path, migrated_db)
    assert (status, len(lines)) == (1, 1), lines
    assert lines[0].startswith(f"MISMATCH API key {ci.uuid} of account pruned@x.test: requests")
