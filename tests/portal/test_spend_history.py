"""reports.usage.spend_history, on a real SQLite file: this month's spend and the last 30 days,
day by day (UTC), zero days included, other users' usage left out; read from the per-day totals
that settlement keeps, so usage rows deleted by retention change nothing."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from codelace_box.db.core import write_transaction
from codelace_box.db.models import UsageRecord, User
from codelace_box.db.timestamps import db_time
from codelace_box.gateway.metering import count_in_totals
from codelace_box.reports.usage import spend_history


@pytest.fixture
def users(migrated_db: Path) -> tuple[int, int]:
    """Two accounts in a fresh database (PostgreSQL with CODELACE_TEST_DATABASE=postgres)."""
    with write_transaction():
        return (User.create(email="a@x.test").id, User.create(email="b@x.test").id)


def spend(user_id: int, when: datetime, nanos: int) -> None:
    """A usage row, counted into the totals as a settlement counts it."""
    with write_transaction() as tx:
        count_in_totals(tx, (user_id, None, "m/x"), "ok", (0, 0, 0, 0, nanos), db_time(when))
        UsageRecord.create(
            request_id=f"req_{user_id}_{when.isoformat()}_{nanos}",
            user=user_id,
            model="m/x",
            provider="p",
            upstream_model="x",
            input_per_1m_nanos=0,
            output_per_1m_nanos=0,
            cost_nanos=nanos,
            status="ok",
            created_at=when,
        )


def test_month_and_days(users: tuple[int, int]) -> None:
    mine, theirs = users
    now = datetime(2026, 3, 10, 12, 0)
    spend(mine, datetime(2026, 3, 10, 0, 0, 1), 5)
    spend(mine, datetime(2026, 3, 10, 11, 59), 7)
    spend(mine, datetime(2026, 3, 1, 0, 0), 11)  # this month, first second
    spend(mine, datetime(2026, 2, 28, 23, 59, 59), 13)  # last month, inside the 30 days
    spend(mine, datetime(2026, 2, 8, 23, 59), 17)  # 31 days back: outside
    spend(theirs, datetime(2026, 3, 10, 1, 0), 1000)
    history = spend_history(mine, 30, now)
    assert history.month_nanos == 5 + 7 + 11
    assert len(history.daily) == 30
    assert history.daily[0][0] == now.date() - timedelta(days=29)
    assert history.daily[-1] == (now.date(), 12)
    by_day = dict(history.daily)
    assert by_day[datetime(2026, 3, 1).date()] == 11
    assert by_day[datetime(2026, 2, 28).date()] == 13
    assert sum(by_day.values()) == 5 + 7 + 11 + 13


def test_a_month_longer_than_the_window_counts_whole(users: tuple[int, int]) -> None:
    mine, _ = users
    now = datetime(2026, 1, 31, 23, 0)
    spend(mine, datetime(2026, 1, 1, 0, 0), 3)  # 30 days back: this month, not in the chart
    history = spend_history(mine, 30, now)
    assert history.month_nanos == 3
    assert sum(n for _, n in history.daily) == 0


def test_usage_rows_deleted_by_retention_change_no_day(users: tuple[int, int]) -> None:
    mine, _ = users
    now = datetime(2026, 3, 10, 12, 0)
    spend(mine, datetime(2026, 3, 9, 8, 0), 21)
    with write_transaction():
        UsageRecord.delete().execute()
    history = spend_history(mine, 30, now)
    assert (history.month_nanos, dict(history.daily)[datetime(2026, 3, 9).date()]) == (21, 21)


def test_a_leap_day_and_a_tenth_of_a_second_before_midnight(users: tuple[int, int]) -> None:
    """UTC days as the settlement stamps them: 23:59:59.9 is the day before, 00:00 the day of;
    29 February is a day of its own, and March's spend starts on the 1st."""
    mine, _ = users
    spend(mine, datetime(2028, 2, 29, 23, 59, 59, 900000), 3)
    spend(mine, datetime(2028, 3, 1, 0, 0), 5)
    spend(mine, datetime(2028, 3, 31, 23, 59, 59, 999999), 7)
    history = spend_history(mine, 30, datetime(2028, 3, 31, 23, 59, 59, 999999))
    per_day = dict(history.daily)
    assert history.month_nanos == 5 + 7
    assert history.daily[0][0] == datetime(2028, 3, 2).date() and len(history.daily) == 30
    assert per_day[datetime(2028, 3, 31).date()] == 7 and sum(per_day.values()) == 7
    earlier = spend_history(mine, 30, datetime(2028, 3, 15, 12, 0))
    by_day = dict(earlier.daily)
    assert by_day[datetime(2028, 2, 29).date()] == 3 and by_day[datetime(2028, 3, 1).date()] == 5
    assert earlier.month_nanos == 5
