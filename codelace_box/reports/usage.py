"""A user's own usage: totals (running counters) and recent requests
(/api/v1/customer/usage), and the spend by day and this month (the portal)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from codelace_box.db.core import database, parse_time, query_all, utcnow
from codelace_box.db.snapshot import one_instant
from codelace_box.reports.traffic import usage_totals


@dataclass(frozen=True)
class RecentRequest:
    """One of a user's recent requests, as the customer's usage page shows it."""

    id: int  # the usage row's (the next page starts before it)
    request_id: str
    model: str
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cost_nanos: int
    status: str
    stream: bool
    duration_ms: int
    created_at: datetime  # naive UTC, as stored


@dataclass(frozen=True)
class UsageSummary:
    request_count: int
    input_tokens: int
    output_tokens: int
    cost_nanos: int
    recent: list[RecentRequest]


RECENT_SQL = (
    "SELECT id, request_id, model, input_tokens, output_tokens, cache_read_tokens, "
    "cache_write_tokens, cost_nanos, status, stream, duration_ms, created_at FROM usage_record "
    "WHERE user_id = ?"
)


def recent_usage(user_id: int, limit: int, before_id: int | None = None) -> list[RecentRequest]:
    """The user's newest `limit` usage rows (older than row `before_id`: the next page), read
    along the (user_id, id) index: the cost is the page's, however long the history. Plain
    rows, not models: building peewee models took 25 times as long, all of it holding the
    interpreter lock the event loop needs."""
    sql, params = RECENT_SQL, [user_id]
    if before_id is not None:
        sql += " AND id < ?"
        params.append(before_id)
    rows = query_all(sql + " ORDER BY id DESC LIMIT ?", [*params, limit])
    return [_recent(row) for row in rows]


def _recent(row: tuple[Any, ...]) -> RecentRequest:
    (id_, request_id, model, input_tokens, output_tokens, cache_read, cache_write, cost,
     status, stream, duration_ms, created_at) = row  # fmt: skip
    return RecentRequest(
        int(id_), request_id, model, int(input_tokens), int(output_tokens), int(cache_read),
        int(cache_write), int(cost), status, bool(stream), int(duration_ms), parse_time(created_at),
    )  # fmt: skip


def usage_summary(user_id: int, limit: int) -> UsageSummary:
    """Totals over every request of the user (the running totals), and the newest `limit`
    requests. Its reads grow with history: run it with db.offload.run_in_db_thread. Both are
    read at one instant: a request settled between the two reads was listed but not counted."""
    with one_instant(database.obj):
        return _summary(user_id, limit)


def _summary(user_id: int, limit: int) -> UsageSummary:
    totals = usage_totals(user_id)
    recent = recent_usage(user_id, limit)
    return UsageSummary(
        totals.requests, totals.input_tokens, totals.output_tokens, totals.cost_nanos, recent
    )


SPEND_DAYS_SQL = (  # one account's days: a range of key_day_usage's primary key
    "SELECT day, SUM(cost_nanos) FROM key_day_usage "
    "WHERE user_id = ? AND day >= ? AND day <= ? GROUP BY day"
)


@dataclass(frozen=True)
class SpendHistory:
    month_nanos: int  # spent since the first of this month (UTC)
    daily: list[tuple[date, int]]  # the last `days` days, oldest first, zero days included


def spend_history(user_id: int, days: int = 30, now: datetime | None = None) -> SpendHistory:
    """What the user spent this month and on each of the last `days` days (UTC dates).

    The account's keys' per-day totals (kept in the settlement transaction: db/totals.py),
    summed per day: a row a key a day however busy the user was, one range of the primary key."""
    now = now or utcnow()
    today = now.date()
    first_day = today - timedelta(days=days - 1)
    month_start = today.replace(day=1)
    since = min(first_day, month_start).isoformat()
    # up to today: a day past `now` (another box's clock) is not this month's
    rows = query_all(SPEND_DAYS_SQL, (user_id, since, today.isoformat()))
    per_day = {date.fromisoformat(str(day)): int(total) for day, total in rows}
    month = sum(cost for day, cost in per_day.items() if day >= month_start)
    daily = [(first_day + timedelta(days=i), 0) for i in range(days)]
    return SpendHistory(month, [(day, per_day.get(day, 0)) for day, _ in daily])


def usage_page(
    user_id: int, limit: int, now: datetime | None = None
) -> tuple[UsageSummary, SpendHistory]:
    """The portal's usage page: `usage_summary`'s and `spend_history`'s figures read at one
    instant (a request settled between two reads was in the days' spend, not in the totals
    nor the list). Run it with db.offload.read_in_db_thread, as those."""
    with one_instant(database.obj):
        return _summary(user_id, limit), spend_history(user_id, now=now)
