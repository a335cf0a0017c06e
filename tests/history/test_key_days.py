"""Usage per key per day (migration 19, db/totals.py): the migration fills it from the usage
rows there are and counts what retention already took from an account's days under a key not
known; `usage report --by key` reads its whole days from it; `doctor` finds an account whose key
days disagree with its total. On either engine."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from codelace_box.accounts.keys import create_key
from codelace_box.accounts.users import create_user
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
from tests.pg_cluster import wanted_engine

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
