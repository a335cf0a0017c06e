"""`usage report` from the day totals (reports/spend_days.py) against the old report over the
usage rows (reports/spend.py), on either engine: the same rows, counted by the settlement's
own `count_in_totals`, spread over days with rows on the midnights and just before them; every
window (open ends, whole days, partial days, inside one day) grouped every way gives the same
groups and figures (per key too: each account has two keys, and requests with none, one of
its keys revoked, another's key row deleted). After retention deleted the old rows, the whole
days still count."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from peewee import chunked

from codelace_box.accounts.keys import create_key, revoke_key
from codelace_box.accounts.users import create_user
from codelace_box.cli.usage import render
from codelace_box.db.core import close_database, write_transaction
from codelace_box.db.models import ApiKey, KeyDayUsage
from codelace_box.reports.history import delete_old_usage_rows
from codelace_box.reports.spend import spend_report
from codelace_box.reports.spend_days import daily_spend_report, days_read, whole_days
from tests.clock import clear_of_midnight
from tests.history.test_history_units import add_row
from tests.pg_cluster import secret_for
from tests.support import run_cli, write_config

DAY0 = datetime(2026, 2, 20)
MODELS = ("openai/gpt-5.4", "openai/gpt-5.4-mini", "anthropic/claude-sonnet-4-6")
OFFSETS = (  # within a day: midnight, a microsecond before the next, the hours between
    timedelta(0),
    timedelta(hours=3, minutes=7),
    timedelta(hours=12, seconds=30),
    timedelta(hours=23, minutes=59, seconds=59, microseconds=999999),
)


def _traffic() -> list[int]:
    """Three accounts, three models, errors among them, over ten days; two keys per account
    and requests with no key (the portal's)."""
    users = [create_user(f"u{i}@x.test").id for i in range(3)]
    keys = {user: [create_key(user, f"k{i}").key.id for i in range(2)] for user in users}
    n = 0
    for day in range(10):
        for offset in OFFSETS:
            for who, user in enumerate(users):
                if (day + who) % 4 == 3:
                    continue  # not every account every day
                when = DAY0 + timedelta(days=day) + offset
                status = "error" if (n % 7) == 0 else "ok"
                key = [*keys[user], None][(n + who) % 3]
                add_row(user, when, n, model=MODELS[(n + day) % 3], status=status, key=key)
                n += 1
    revoke_key(ApiKey.get_by_id(keys[users[0]][0]).uuid)  # still its own group
    ApiKey.delete_by_id(keys[users[1]][1])  # its rows: no key now (ON DELETE SET NULL)
    return users


def _windows() -> list[tuple[datetime | None, datetime | None]]:
    at = [DAY0 + timedelta(days=d) for d in range(-1, 12)]
    moments = [
        *at,
        DAY0 + timedelta(days=2, hours=5),
        DAY0 + timedelta(days=7, hours=23, minutes=59, seconds=59, microseconds=999999),
        DAY0 + timedelta(days=3, microseconds=1),
    ]
    windows: list[tuple[datetime | None, datetime | None]] = [(None, None)]
    windows += [(m, None) for m in moments] + [(None, m) for m in moments]
    windows += [(a, b) for a in moments for b in moments if a < b]
    return windows


def test_the_day_totals_give_the_rows_figures_for_every_window(migrated_db: Path) -> None:
    _traffic()
    windows = _windows()
    read_days = {"user": 0, "model": 0, "key": 0}
    for by in read_days:
        for since, until in windows:
            old = spend_report(by, since, until)
            assert daily_spend_report(by, since, until) == old, (by, since, until)
            read_days[by] += days_read(by, since, until) is not None
    assert len(spend_report("key", None, None)) == 6  # 5 keys (one revoked), and no key
    assert all(n > len(windows) // 2 for n in read_days.values()), read_days  # most windows


def test_whole_days_are_the_midnights_inside_the_window() -> None:
    assert whole_days(DAY0, DAY0 + timedelta(days=1)) is not None
    assert whole_days(DAY0 + timedelta(microseconds=1), DAY0 + timedelta(days=1)) is None
    assert whole_days(DAY0, DAY0 + timedelta(hours=23, minutes=59)) is None
    days = whole_days(DAY0 - timedelta(seconds=1), DAY0 + timedelta(days=2, hours=1))
    assert days is not None and (days.first, days.last) == (DAY0.date(), DAY0.date() + timedelta(1))
    assert whole_days(datetime.min, datetime.max) is not None


def test_after_retention_the_whole_days_still_count(migrated_db: Path) -> None:
    _traffic()
    since, until = DAY0, DAY0 + timedelta(days=10)
    before = {by: spend_report(by, since, until) for by in ("user", "model", "key")}
    head = DAY0 - timedelta(hours=6)  # a partial day first: its rows are gone
    assert delete_old_usage_rows(0, now=DAY0 + timedelta(days=11)) > 0
    assert spend_report("user", since, until) == []  # the rows' report: nothing left
    for by, rows in before.items():
        assert rows and daily_spend_report(by, since, until) == rows, by
        assert daily_spend_report(by, head, until) == rows, by


@pytest.mark.parametrize("by", ["user", "model", "key"])
def test_the_retention_note_names_the_days_counted(by: str) -> None:
    view = {
        "by": by,
        "since": None,
        "until": None,
        "rows": [],
        "total": {by: "TOTAL", "owner": "", "spend_nanos": 0},
        "rows_deleted_before": "2026-03-01T00:00:00Z",
        "retention_days": 30,
        "whole_days_counted": {"first": "0001-01-01", "last": "9999-12-30"},
    }
    assert "the whole UTC days 0001-01-01 to 9999-12-30 are counted" in render(view)
    view["whole_days_counted"] = None  # a window with no whole day in it
    assert "this report cannot count them" in render(view)


def test_the_days_an_open_window_counted_are_the_days_there_are(
    migrated_db: Path | str, tmp_path: Path
) -> None:
    """`usage report` with retention on and no --since/--until (the report an operator runs
    most) named "the whole UTC days 0001-01-01 to 9999-12-30" in its note and its JSON: the
    days it counted are those from the first day with totals up to today."""
    clear_of_midnight()  # the reports' "today" (their clock's) is the one expected
    _traffic()
    close_database()
    target = str(migrated_db)
    database = {"url": target} if target.startswith("postgresql") else {"path": target}
    server = {"secret_key": secret_for(target)} if "url" in database else {}
    sections = {"server": server, "database": database, "usage": {"retention_days": 1}}
    config = write_config(tmp_path / "codelace.toml", sections)
    for by in ("user", "model", "key"):
        done = run_cli(config, "usage", "report", "--by", by, "--json")
        assert done.returncode == 0, done.stderr
        view = json.loads(done.stdout)
        today = datetime.now(UTC).date()
        assert view["whole_days_counted"] == {
            "first": DAY0.date().isoformat(), "last": today.isoformat(),
        }, by  # fmt: skip
        text = run_cli(config, "usage", "report", "--by", by).stdout
        assert f"the whole UTC days {DAY0.date().isoformat()} to {today.isoformat()}" in text


def test_a_report_per_key_over_more_keys_than_sqlite_takes_parameters(migrated_db: Path) -> None:
    """`usage report --by key` looked up its keys' names and owners with one `IN (?, ...)` of
    every key in the report: past 32,766 keys (every otp/verify mints a key: a team signing in
    daily for a year or two) SQLite refused the statement, "too many SQL variables", and the
    report failed. Every key is described, whatever their number."""
    user = create_user("many@x.test").id
    count = 32_800
    keys = [
        (user, f"k{n}", "cl_abcd", f"hash-{n}", f"00000000-0000-4000-8000-{n:012d}")
        for n in range(count)
    ]
    key_fields = [ApiKey.user, ApiKey.name, ApiKey.key_prefix, ApiKey.key_hash, ApiKey.uuid]
    with write_transaction():
        for part in chunked(keys, 1000):
            ApiKey.insert_many(part, fields=key_fields).execute()
    ids = [k.id for k in ApiKey.select(ApiKey.id).where(ApiKey.user == user)]
    day = DAY0.date().isoformat()
    figures = ["requests", "errors", "input_tokens", "output_tokens", "cache_read_tokens",
               "cache_write_tokens", "cost_nanos"]  # fmt: skip
    day_fields = [KeyDayUsage.user, KeyDayUsage.day, KeyDayUsage.api_key_id]
    day_fields += [getattr(KeyDayUsage, name) for name in figures]
    with write_transaction():
        for part in chunked([(user, day, key_id, 1, 0, 1, 1, 0, 0, 10) for key_id in ids], 500):
            KeyDayUsage.insert_many(part, fields=day_fields).execute()
    rows = daily_spend_report("key", DAY0, DAY0 + timedelta(days=1))
    assert len(rows) == count
    assert {r.detail for r in rows} == {f"k{n} (many@x.test)" for n in range(count)}
