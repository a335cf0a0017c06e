"""An account's days are the sums of its keys' days (key_day_usage, no key and a key not known
included): the portal's spend chart and month to date, `usage report --by user` and `doctor`
read those sums, and a database from before the account days were dropped shows the same
figures after its migration as before, over many windows. On either engine."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest

from codelace_box.accounts.keys import create_key
from codelace_box.accounts.users import create_user
from codelace_box.db.core import (
    POSTGRES,
    close_database,
    engine,
    open_database,
    query_all,
    schema_target,
    write_transaction,
)
from codelace_box.db.migrate import LATEST_VERSION, migrate
from codelace_box.db.migrations import MIGRATIONS, m0009_usage_totals, m0013_account_days
from codelace_box.db.models import SchemaMigration
from codelace_box.reports.spend import rows_report
from codelace_box.reports.spend_days import UNKNOWN_KEY, daily_spend_report
from codelace_box.reports.totals_check import totals_problems
from codelace_box.reports.usage import SPEND_DAYS_SQL, spend_history
from tests.history.test_history_units import add_row
from tests.pg_cluster import wanted_engine
from tests.query_plan import query_plan

FIRST = date(2026, 2, 20)  # the rows span a month's end: month to date starts within them
SPAN = 20  # days with rows
# what the readers read before the account days were dropped (migration 22), verbatim
_OLD_DAYS_SQL = "SELECT user_id, day, cost_nanos FROM account_day_usage"
_OLD_USER_SQL = (
    "SELECT u.uuid, u.email, COALESCE(SUM(d.requests), 0), COALESCE(SUM(d.input_tokens), 0), "
    "COALESCE(SUM(d.output_tokens), 0), COALESCE(SUM(d.cost_nanos), 0), "
    'COALESCE(SUM(d.errors), 0) FROM account_day_usage d JOIN "user" u ON u.id = d.user_id '
    "WHERE d.day >= ? AND d.day < ? GROUP BY u.uuid, u.email"
)


@pytest.fixture
def old_box(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[Any, dict[str, int]]]:
    """A database as release 21 left it, its account days kept since before migration 19:
    rows with a key, with none and with errors over 20 days, some of them deleted (retention)
    before migration 19, and one account day that holds more than its keys' days."""
    postgres = wanted_engine() == "postgres"
    db = open_database(request.getfixturevalue("pg_url") if postgres else tmp_path / "old.db")
    try:
        _apply(db, MIGRATIONS[:18])
        users = _fill_rows()
        with write_transaction() as tx:  # the totals and days as the releases before kept them
            for statement in [*m0009_usage_totals.backfill(), m0013_account_days.backfill()]:
                tx.execute(statement)
            tx.execute("DELETE FROM usage_record WHERE created_at < ?", ("2026-02-21 06:00",))
        _apply(db, MIGRATIONS[18:21])
        with write_transaction() as tx:  # a day the keys' days fall short of (doctor says so)
            tx.execute(
                "UPDATE account_day_usage SET requests = requests + 1, cost_nanos = cost_nanos "
                "+ 5 WHERE user_id = ? AND day = ?",
                (users["bob"], "2026-03-02"),
            )
        yield db, users
    finally:
        close_database()


def _apply(db: Any, migrations: list[tuple[int, Any]]) -> None:
    with write_transaction():
        db.create_tables([SchemaMigration], safe=True)
        for version, module in migrations:
            module.apply(schema_target(db))
            SchemaMigration.create(version=version, name=module.NAME)


def _fill_rows() -> dict[str, int]:
    alice, bob = create_user("alice@x.test").id, create_user("bob@x.test").id
    create_user("carol@x.test")  # no requests at all
    keys = [create_key(alice, "ci").key.id, create_key(alice, "laptop").key.id]
    bob_key = create_key(bob, "ci").key.id
    for n in range(120):
        when = datetime.combine(FIRST, time()) + timedelta(hours=n * 4 + n % 3, minutes=n)
        if n % 3 == 2:
            add_row(bob, when, n, counted=False, key=bob_key if n % 2 else None)
        else:
            status = "error" if n % 7 == 0 else "ok"
            key = keys[n % 2] if n % 5 else None
            add_row(alice, when, n, counted=False, key=key, status=status)
    return {"alice": alice, "bob": bob}


def _old_days() -> dict[tuple[int, date], int]:
    return {(int(u), date.fromisoformat(str(d))): int(c) for u, d, c in query_all(_OLD_DAYS_SQL)}


def _windows() -> list[tuple[datetime, datetime]]:
    """Whole-day windows of every length over the span and past it, and some not whole."""
    start = datetime.combine(FIRST, time())
    whole = [
        (start + timedelta(days=a), start + timedelta(days=b))
        for a in range(-1, SPAN + 2)
        for b in range(a + 1, SPAN + 3)
    ]
    parts = [(s + timedelta(hours=7), e + timedelta(hours=13)) for s, e in whole[::9]]
    return whole + parts


def _old_user_report(since: datetime, until: datetime) -> set[tuple[Any, ...]]:
    """`usage report --by user` as it was: whole days from the account days, edges from rows."""
    first = since.date() if since.time() == time() else since.date() + timedelta(days=1)
    stop = until.date()
    found: dict[tuple[str, str], list[int]] = {}
    edges = [(since, datetime.combine(first, time())), (datetime.combine(stop, time()), until)]
    rows = [tuple(r) for r in query_all(_OLD_USER_SQL, (first.isoformat(), stop.isoformat()))]
    rows += [(r.key, r.label, r.requests, r.input_tokens, r.output_tokens, r.spend_nanos,
              r.errors) for s, e in edges if s < e for r in rows_report("user", s, e)]  # fmt: skip
    for row in rows:
        sums = found.setdefault((str(row[0]), str(row[1])), [0] * 5)
        for i, value in enumerate(row[2:7]):
            sums[i] += int(value)
    return {(*group, *sums) for group, sums in found.items() if sums[0]}


def _user_report(since: datetime, until: datetime) -> set[tuple[Any, ...]]:
    return {
        (r.key, r.label, r.requests, r.input_tokens, r.output_tokens, r.spend_nanos, r.errors)
        for r in daily_spend_report("user", since, until)
    }


def _expected_history(
    days: dict[tuple[int, date], int], user: int, today: date, span: int
) -> tuple[int, list[tuple[date, int]]]:
    """spend_history's figures from the old account days: month to date, then day by day."""
    first = today - timedelta(days=span - 1)
    month = sum(c for (u, d), c in days.items() if u == user and today.replace(day=1) <= d <= today)
    return month, [(first + timedelta(i), days.get((user, first + timedelta(i)), 0))
                   for i in range(span)]  # fmt: skip


def test_every_account_figure_is_the_same_after_the_account_days_are_dropped(
    old_box: tuple[Any, dict[str, int]],
) -> None:
    db, users = old_box
    days = _old_days()
    windows = _windows()
    reports = {w: _old_user_report(*w) for w in windows}
    bob_days = query_all(  # doctor's figure: bob's days, one more request than his total
        "SELECT SUM(requests), SUM(cost_nanos) FROM account_day_usage WHERE user_id = ?",
        (users["bob"],),
    )[0]
    assert len(days) > 30 and len([r for r in reports.values() if r]) > 250
    assert migrate(db) == list(range(22, LATEST_VERSION + 1))
    for window in windows:
        assert _user_report(*window) == reports[window], window
    today_range = [FIRST + timedelta(days=i) for i in range(-2, SPAN + 3)]
    for user in (*users.values(), 999):
        for today in today_range:
            for span in (1, 7, 30, 45):
                now = datetime.combine(today, time(12))
                got = spend_history(user, span, now)
                assert (got.month_nanos, got.daily) == _expected_history(days, user, today, span)
    problems = [p for p in totals_problems() if "ledger" not in p]
    requests, cost = (int(v) for v in bob_days)
    assert len(problems) == 1 and "bob@x.test" in problems[0], problems
    assert f"!= {requests} in the days, cost_nanos" in problems[0]
    assert problems[0].endswith(f"!= {cost} in the days")
    assert "account_day_usage" not in _tables()
    _the_unknown_key_group_says_what_it_holds()


def _the_unknown_key_group_says_what_it_holds() -> None:
    """`usage report --by key`: key -1 holds the rows retention deleted before migration 19
    and now also what migration 22 added from an account's days (bob's day its keys fell
    short of): its label names neither as the other, so it points at migration 22."""
    everything = daily_spend_report("key", datetime(2026, 1, 1), datetime(2026, 4, 1))
    deleted = datetime.combine(FIRST, time()), datetime(2026, 2, 21, 6)
    unknown = [r for r in everything if r.key == "-"]
    assert len(unknown) == 1 and unknown[0].requests == _rows_before(*deleted) + 1
    assert "migration 22" in unknown[0].label and "deleted" not in unknown[0].label
    assert unknown[0].label == UNKNOWN_KEY


def _rows_before(start: datetime, end: datetime) -> int:
    """How many of the filled rows fell in [start, end) (the ones retention deleted)."""
    return sum(
        start <= datetime.combine(FIRST, time()) + timedelta(hours=n * 4 + n % 3, minutes=n) < end
        for n in range(120)
    )


def _tables() -> set[str]:
    if wanted_engine() == "postgres":
        sql = "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
    else:
        sql = "SELECT name FROM sqlite_master WHERE type = 'table'"
    return {str(r[0]) for r in query_all(sql)}


def test_one_accounts_days_are_one_range_of_the_key_days(migrated_db: Any) -> None:
    """The portal's spend reads an account's days along key_day_usage's primary key (user_id,
    day, api_key_id), not through every key's days (migration 22's order; it was api_key_id
    first: a scan of the table, 27 ms at a million key days against 0.03 ms)."""
    params = (1, "2026-02-01", "2026-03-02")
    plan = query_plan(SPEND_DAYS_SQL, params)
    if engine() == POSTGRES:
        assert "key_day_usage_pkey" in plan and "Index Cond: ((user_id = " in plan, plan
        return
    assert "SEARCH key_day_usage USING PRIMARY KEY (user_id=? AND day>? AND day<?)" in plan, plan
    assert "TEMP B-TREE" not in plan, plan
