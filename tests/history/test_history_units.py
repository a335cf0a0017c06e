"""History in-process: the migration's backfill, retention in batches, the customer's page
query, `--since`, and the export formats, on a real SQLite file."""

from __future__ import annotations

import csv
import io
import json
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from codelace_box.accounts.users import create_user
from codelace_box.billing.ledger import append_entry_in
from codelace_box.db.core import (
    POSTGRES,
    close_database,
    connection,
    db_time,
    engine,
    open_database,
    query_all,
    write_transaction,
)
from codelace_box.db.history import delete_usage_batch
from codelace_box.db.migrate import migrate
from codelace_box.db.migrations import MIGRATIONS
from codelace_box.db.models import AccountUsage, UsageRecord, UsageRollup
from codelace_box.db.offload import start_db_thread, stop_db_thread
from codelace_box.errors import InvalidRequest
from codelace_box.gateway.metering import count_in_totals
from codelace_box.reports.history import (
    delete_old_usage_rows,
    export_records,
    retention_pass,
    write_export,
)
from codelace_box.reports.moments import parse_moment as parse_since
from codelace_box.reports.traffic import recent_requests, recent_requests_query, usage_totals
from codelace_box.reports.usage import (
    RECENT_SQL,
    SPEND_DAYS_SQL,
    recent_usage,
    usage_page,
    usage_summary,
)
from tests.pg_cluster import wanted_engine
from tests.query_plan import query_plan
from tests.support import migrate_below

NOW = datetime(2026, 3, 1, 12, 0, 0)


T = TypeVar("T")


def add_row(user_id: int, when: datetime, n: int, *, counted: bool = True, **extra: Any) -> None:
    values = {
        "request_id": f"req-{user_id}-{n}",
        "user": user_id,
        "api_key": extra.get("key"),
        "model": extra.get("model", "openai/gpt-5.4"),
        "provider": "openai",
        "upstream_model": "gpt-5.4",
        "input_tokens": 100 + n,
        "output_tokens": 10 + n,
        "cache_read_tokens": n % 3,
        "input_per_1m_nanos": 1,
        "output_per_1m_nanos": 1,
        "cost_nanos": 1000 + n,
        "status": extra.get("status", "ok"),
        "created_at": when,
    }
    UsageRecord.create(**values)
    if counted:
        usage = (100 + n, 10 + n, n % 3, 0, 1000 + n)
        with write_transaction() as tx:
            count_in_totals(
                tx,
                (user_id, extra.get("key"), values["model"]),
                values["status"],
                usage,
                db_time(when),
            )


def test_the_migration_backfills_totals_and_rollups_from_existing_rows(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    postgres = wanted_engine() == "postgres"
    db = open_database(request.getfixturevalue("pg_url") if postgres else tmp_path / "old.db")
    try:
        migrate_below(db, 9)
        alice, bob = create_user("a@x.test").id, create_user("b@x.test").id
        for n in range(30):
            when = NOW - timedelta(minutes=n * 50)
            add_row(
                alice if n % 2 else bob,
                when,
                n,
                counted=False,
                status="error" if n % 7 == 0 else "ok",
            )
        assert migrate(db) == [version for version, _ in MIGRATIONS if version >= 9]
        by_user = dict(query_all("SELECT user_id, COUNT(*) FROM usage_record GROUP BY user_id"))
        for user in (alice, bob):
            totals = usage_totals(user)
            assert totals.requests == by_user[user] == 15
            summed = query_all(
                "SELECT SUM(input_tokens), SUM(output_tokens), SUM(cost_nanos) FROM usage_record "
                "WHERE user_id = ?",
                (user,),
            )[0]
            assert (totals.input_tokens, totals.output_tokens, totals.cost_nanos) == summed
        minutes = UsageRollup.select().where(UsageRollup.period == "minute")
        days = UsageRollup.select().where(UsageRollup.period == "day")
        assert sum(r.requests for r in minutes) == sum(r.requests for r in days) == 30
        assert sum(r.errors for r in days) == 5  # n = 0, 7, 14, 21, 28
        assert {r.bucket for r in days} == {"2026-03-01", "2026-02-28"}
        newest = AccountUsage.get_by_id(alice).last_request_at
        assert newest == NOW - timedelta(minutes=50)
    finally:
        close_database()


def test_retention_deletes_in_batches_and_leaves_totals_and_ledger(migrated_db: Path) -> None:
    alice = create_user("a@x.test").id
    with write_transaction() as tx:
        append_entry_in(tx, alice, 5_000_000, "admin", "credit", "k1", db_time(NOW))
    for n in range(1234):
        add_row(alice, NOW - timedelta(days=40, seconds=n), n)
    for n in range(2000, 2010):
        add_row(alice, NOW - timedelta(days=1), n)
    totals = usage_totals(alice)
    cutoff = db_time(NOW - timedelta(days=30))
    assert [delete_usage_batch(cutoff, 500) for _ in range(4)] == [500, 500, 234, 0]
    assert UsageRecord.select().count() == 10
    assert usage_totals(alice) == totals and totals.requests == 1244
    assert query_all("SELECT COUNT(*), SUM(amount_nanos) FROM ledger_entry") == [(1, 5_000_000)]
    assert delete_old_usage_rows(0, now=NOW) == 10
    assert usage_totals(alice) == totals


async def test_retention_pass_runs_on_the_database_thread(migrated_db: Path) -> None:
    alice = create_user("a@x.test").id
    for n in range(25):
        add_row(alice, datetime(2020, 1, 1) + timedelta(seconds=n), n)
    add_row(alice, datetime.now(), 99)
    start_db_thread()
    try:
        assert await retention_pass(30, batch=10) == 25
    finally:
        stop_db_thread()
    assert [r.request_id for r in UsageRecord.select()] == [f"req-{alice}-99"]


def test_the_customer_page_reads_along_the_index(migrated_db: Path) -> None:
    alice, bob = create_user("a@x.test").id, create_user("b@x.test").id
    for n in range(12):
        add_row(alice if n % 3 else bob, NOW + timedelta(seconds=n), n)
    first = recent_usage(alice, 3)
    assert [r.request_id for r in first] == [f"req-{alice}-{n}" for n in (11, 10, 8)]
    after = recent_usage(alice, 3, before_id=first[-1].id)
    assert [r.request_id for r in after] == [f"req-{alice}-{n}" for n in (7, 5, 4)]
    sql = RECENT_SQL + " AND id < ? ORDER BY id DESC LIMIT ?"  # what recent_usage runs
    plan = query_plan(sql, (alice, 10**9, 20))
    if engine() == POSTGRES:
        # Not the primary key backwards with a filter (a million other rows read), no sort:
        assert "usage_record_user_id_id" in plan and "Sort" not in plan, plan  # migration 15
        return
    assert "usage_record_user_id" in plan and "TEMP B-TREE" not in plan, plan


def test_the_dashboard_s_requests_of_one_account_read_along_the_index(migrated_db: Path) -> None:
    """The admin dashboard's user page lists the account's newest requests: read along the
    index by user, as the customer's page is, not every row of the account sorted (a temporary
    B-tree over a million rows of a busy account: seconds)."""
    alice, bob = create_user("a@x.test").id, create_user("b@x.test").id
    for n in range(12):
        add_row(alice if n % 3 else bob, NOW + timedelta(seconds=n), n)
    shown = recent_requests(3, user_id=alice)
    assert [r.request_id for r in shown] == [f"req-{alice}-{n}" for n in (11, 10, 8)]
    assert [r.request_id for r in recent_requests(3)] == [
        f"req-{u}-{n}" for u, n in ((alice, 11), (alice, 10), (bob, 9))
    ]
    sql, args = recent_requests_query(20, "", alice)
    plan = query_plan(sql, args)
    if engine() == POSTGRES:
        assert "usage_record_user_id_id" in plan and "Sort" not in plan, plan
        return
    assert "usage_record_user_id" in plan and "TEMP B-TREE" not in plan, plan


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24h", NOW - timedelta(hours=24)),
        ("7d", NOW - timedelta(days=7)),
        ("2026-02-01", datetime(2026, 2, 1)),
        ("2026-02-01T10:30:00Z", datetime(2026, 2, 1, 10, 30)),
    ],
)
def test_since_takes_iso_dates_and_spans(text: str, expected: datetime) -> None:
    assert parse_since(text, now=NOW) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-02-01+05:00", datetime(2026, 1, 31, 19)),  # read as 05:00 UTC: ten hours late
        ("2026-02-01-10:00", datetime(2026, 2, 1, 10)),
        ("2026-02-01Z", datetime(2026, 2, 1)),
        ("20260201+0100", datetime(2026, 1, 31, 23)),
        ("2026-02-01T10:30:00z", datetime(2026, 2, 1, 10, 30)),  # as expires_at takes it
        ("2026-02-01t10:30+00:00", datetime(2026, 2, 1, 10, 30)),
        ("2026-W05-7+05:00", datetime(2026, 1, 31, 19)),  # an ISO week date: 1 February
        ("2026W057-10:00", datetime(2026, 2, 1, 10)),
        ("2026-W05+05:00", datetime(2026, 1, 25, 19)),  # the week's Monday, 26 January
        ("2026-W05-05:00", datetime(2026, 1, 26, 5)),  # no day, an offset west: -0 no day
        ("2026-W05-7-05:00", datetime(2026, 2, 1, 5)),
        ("2026-W05-7T10:30+00:00", datetime(2026, 2, 1, 10, 30)),
    ],
)
def test_a_date_with_an_offset_starts_at_its_midnight_there(text: str, expected: datetime) -> None:
    """`--since 2026-02-01+05:00`, the first of February where the clock is UTC+5: Python's
    fromisoformat took the offset for a time of day (any character may part date and time),
    05:00 UTC, and the window began ten hours late; a lowercase z was refused."""
    assert parse_since(text, now=NOW) == expected


@pytest.mark.parametrize(
    "text",
    ["2026-02-01x10:00", "2026-02-01_10", "2026-02-01 +05:00", "2026-W05-7x10:00", "2026W057_10"],
)
def test_a_date_and_time_are_parted_by_t_or_a_space_only(text: str) -> None:
    with pytest.raises(InvalidRequest, match="--since"):
        parse_since(text, now=NOW)


@pytest.mark.parametrize(
    "text",
    [
        "yesterday",
        "7w",
        "-1d",
        "2026-13-01",
        "",
        "9999-12-31T23:00:00-05:00",
        "0001-01-01T00:00+01:00",
        "\u0663d",  # an Arabic-Indic 3: a span is ASCII digits
    ],
)
def test_a_bad_since_is_one_clear_error(text: str) -> None:
    with pytest.raises(InvalidRequest, match="--since"):
        parse_since(text, now=NOW)


def test_both_export_formats_parse_back_to_the_rows(migrated_db: Path) -> None:
    alice, bob = create_user("a@x.test").id, create_user("b@x.test").id
    for n in range(7):
        add_row(
            alice if n % 2 else bob,
            NOW + timedelta(minutes=n),
            n,
            status="error" if n == 3 else "ok",
        )
    as_csv, as_jsonl = io.StringIO(), io.StringIO()
    assert write_export(export_records(None, None), as_csv, "csv") == 7
    assert write_export(export_records(NOW + timedelta(minutes=2), alice), as_jsonl, "jsonl") == 2
    rows = list(csv.DictReader(io.StringIO(as_csv.getvalue())))
    assert [r["request_id"] for r in rows] == [
        f"req-{bob if n % 2 == 0 else alice}-{n}" for n in range(7)
    ]
    assert rows[3]["status"] == "error" and rows[3]["email"] == "a@x.test"
    assert sum(int(r["cost_nanos"]) for r in rows) == sum(1000 + n for n in range(7))
    records = [json.loads(line) for line in as_jsonl.getvalue().splitlines()]
    assert [r["request_id"] for r in records] == [f"req-{alice}-3", f"req-{alice}-5"]
    assert records[0]["created_at"] == "2026-03-01T12:03:00.000000Z"
    assert records[0]["stream"] is False


def test_exported_times_have_one_form_whatever_their_microseconds(migrated_db: Path) -> None:
    """A row settled on a whole second exported as 12:00:00Z beside 12:00:00.250000Z: a reader
    with one format (strptime's %S.%fZ, a spreadsheet's column type) failed on one row in a
    million. Every time now has its six digits, as the audit log writes them."""
    user = create_user("times@x.test").id
    add_row(user, NOW, 0)
    add_row(user, NOW + timedelta(microseconds=250_000), 1)
    as_csv, as_jsonl = io.StringIO(), io.StringIO()
    write_export(export_records(None, None), as_csv, "csv")
    write_export(export_records(None, None), as_jsonl, "jsonl")
    in_csv = [r["created_at"] for r in csv.DictReader(io.StringIO(as_csv.getvalue()))]
    in_jsonl = [json.loads(line)["created_at"] for line in as_jsonl.getvalue().splitlines()]
    expected = ["2026-03-01T12:00:00.000000Z", "2026-03-01T12:00:00.250000Z"]
    assert in_csv == in_jsonl == expected
    assert [datetime.strptime(t, "%Y-%m-%dT%H:%M:%S.%fZ") for t in in_csv] == [
        NOW,
        NOW + timedelta(microseconds=250_000),
    ]


def _settled_as(statement: str, user: int, read: Callable[[], T]) -> T:
    """`read()`, with a request of `user` settled on a connection of its own (a thread of its
    own) just as `statement` starts: SQLite's statement hook (PostgreSQL's driver has none)."""
    settled: list[int] = []

    def settle_elsewhere() -> None:
        add_row(user, NOW + timedelta(seconds=1), 1)
        close_database()

    def hook(cursor: Any, sql: str, bindings: Any) -> bool:
        if sql.startswith(statement) and not settled:
            settled.append(1)
            worker = threading.Thread(target=settle_elsewhere)
            worker.start()
            worker.join()
        return True

    conn = connection()
    conn.exec_trace = hook
    try:
        found = read()
    finally:
        conn.exec_trace = None
    assert settled, f"{statement[:40]}... ran"
    return found


def test_the_customer_s_totals_and_rows_are_read_at_one_instant(migrated_db: Path) -> None:
    """GET /api/v1/customer/usage read the running totals, then the recent rows, each in its
    own read: a request settled in between (another worker, another box) was in the rows but
    not in `request_count` nor the totals (one request counted, two listed). Both are read at
    one instant now. The settlement is made, on a connection of its own, just as the rows'
    statement starts (SQLite's statement hook: PostgreSQL's driver has none)."""
    if engine() == POSTGRES:
        pytest.skip("the interleaving is made with SQLite's statement hook")
    user = create_user("instant@x.test").id
    add_row(user, NOW, 0)
    summary = _settled_as(RECENT_SQL, user, lambda: usage_summary(user, 20))
    rows = summary.recent
    assert summary.request_count == len(rows), (summary.request_count, len(rows))
    assert summary.cost_nanos == sum(r.cost_nanos for r in rows)
    assert summary.input_tokens == sum(r.input_tokens for r in rows)
    assert usage_summary(user, 20).request_count == 2  # the settlement is there afterwards


def test_the_portal_s_usage_page_is_read_at_one_instant(migrated_db: Path) -> None:
    """The portal's usage page (/portal/api/usage) read the totals and recent rows at one
    instant, then the days in a read of their own: a request settled in between was in the
    month's and the day's spend but not in the totals nor the list (a month's spend above the
    account's total cost). All three are read at one instant now (the settlement is made as
    the days' statement starts, as in the test above)."""
    if engine() == POSTGRES:
        pytest.skip("the interleaving is made with SQLite's statement hook")
    user = create_user("page@x.test").id
    add_row(user, NOW, 0)
    summary, history = _settled_as(SPEND_DAYS_SQL, user, lambda: usage_page(user, 20, now=NOW))
    assert summary.request_count == len(summary.recent) == 1
    assert history.month_nanos == sum(cost for _, cost in history.daily) == summary.cost_nanos
    assert usage_page(user, 20, now=NOW)[1].month_nanos == 1000 + 1001  # there afterwards
