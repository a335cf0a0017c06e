"""A user's own usage: totals (running counters) and recent requests
(/api/v1/customer/usage), and the spend by day and this month (the portal)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from codelace_box.db.core import day_sql, db_time, query_all, utcnow
from codelace_box.db.models import UsageRecord
from codelace_box.reports.traffic import usage_totals


@dataclass(frozen=True)
class UsageSummary:
    request_count: int
    input_tokens: int
    output_tokens: int
    cost_nanos: int
    recent: list[UsageRecord]


def recent_usage(user_id: int, limit: int, before_id: int | None = None) -> list[UsageRecord]:
    """The user's newest `limit` usage rows (older than row `before_id`: the next page), read
    along the (user_id, id) index: the cost is the page's, however long the history."""
    query = UsageRecord.select().where(UsageRecord.user == user_id)
    if before_id is not None:
        query = query.where(UsageRecord.id < before_id)
    return list(query.order_by(UsageRecord.id.desc()).limit(limit))


def usage_summary(user_id: int, limit: int) -> UsageSummary:
    """Totals over every request of the user (the running totals), and the newest `limit`
    requests. Its reads grow with history: run it with db.offload.run_in_db_thread."""
    totals = usage_totals(user_id)
    recent = recent_usage(user_id, limit)
    return UsageSummary(
        totals.requests, totals.input_tokens, totals.output_tokens, totals.cost_nanos, recent
    )


@dataclass(frozen=True)
class SpendHistory:
    month_nanos: int  # spent since the first of this month (UTC)
    daily: list[tuple[date, int]]  # the last `days` days, oldest first, zero days included


def spend_history(user_id: int, days: int = 30, now: datetime | None = None) -> SpendHistory:
    """What the user spent this month and on each of the last `days` days (UTC dates).

    One indexed range read over created_at (at most ~31 days), summed per day by the
    database: at most 31 rows come back, however busy the user was."""
    now = now or utcnow()
    today = now.date()
    first_day = today - timedelta(days=days - 1)
    month_start = today.replace(day=1)
    since = datetime.combine(min(first_day, month_start), time.min, tzinfo=now.tzinfo)
    rows = query_all(
        f"SELECT {day_sql('created_at')}, SUM(cost_nanos) FROM usage_record "
        "WHERE user_id = ? AND created_at >= ? GROUP BY 1",
        (user_id, db_time(since)),
    )
    per_day = {date.fromisoformat(str(day)): int(total) for day, total in rows}
    month = sum(cost for day, cost in per_day.items() if day >= month_start)
    daily = [(first_day + timedelta(days=i), 0) for i in range(days)]
    return SpendHistory(month, [(day, per_day.get(day, 0)) for day, _ in daily])
