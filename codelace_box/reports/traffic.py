"""Read-only traffic statistics from the usage records, for the operator's dashboard.

Nothing here writes. Windows are given as a start moment (naive UTC, as stored); the caller
decides what "now" is, so a frozen clock gives frozen figures. Filters are plain text: every
whitespace-separated term must appear in the email, model, status, error code or request id
(the x-request-id the client got) of a row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from codelace_box.db.core import aggregate, contains_sql, db_time, minute_sql, parse_time, query_all

MAX_ROWS = 1000


@dataclass(frozen=True)
class WindowStats:
    """Traffic of one time window."""

    requests: int
    input_tokens: int
    output_tokens: int
    spend_nanos: int
    errors: int
    active_users: int

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True)
class RequestRow:
    """One metered request, with the email of its user."""

    id: int
    request_id: str
    email: str
    model: str
    provider: str
    input_tokens: int
    output_tokens: int
    cost_nanos: int
    status: str
    error_code: str | None
    stream: bool
    estimated: bool
    duration_ms: int
    created_at: datetime
    user_id: int


@dataclass(frozen=True)
class UsageTotals:
    """Everything one user ever sent."""

    requests: int
    input_tokens: int
    output_tokens: int
    cost_nanos: int


_WINDOW_SQL = """
SELECT COUNT(*), COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0),
       COALESCE(SUM(cost_nanos), 0),
       COALESCE(SUM(CASE WHEN status = 'error' THEN 1 ELSE 0 END), 0), COUNT(DISTINCT user_id)
FROM usage_record WHERE created_at >= ? AND created_at < ?
"""
_END_OF_TIME = datetime(9999, 12, 31)


def window_stats(since: datetime, until: datetime | None = None) -> WindowStats:
    """Requests, tokens, spend, errors and active users from a moment (to another, excluded)."""
    bounds = (db_time(since), db_time(until or _END_OF_TIME))
    row = aggregate(_WINDOW_SQL, bounds)
    return WindowStats(*(int(v) for v in row))


def active_user_ids(since: datetime, until: datetime | None = None) -> set[int]:
    """The users who sent a request in a window (to combine windows without double counting)."""
    bounds = (db_time(since), db_time(until or _END_OF_TIME))
    rows = query_all(
        "SELECT DISTINCT user_id FROM usage_record WHERE created_at >= ? AND created_at < ?",
        bounds,
    )
    return {int(user_id) for (user_id,) in rows}


def combine(older: WindowStats, newer: WindowStats, active_users: int) -> WindowStats:
    """The figures of two adjacent windows as one (active users counted by the caller)."""
    return WindowStats(
        requests=older.requests + newer.requests,
        input_tokens=older.input_tokens + newer.input_tokens,
        output_tokens=older.output_tokens + newer.output_tokens,
        spend_nanos=older.spend_nanos + newer.spend_nanos,
        errors=older.errors + newer.errors,
        active_users=active_users,
    )


def minute_floor(moment: datetime) -> datetime:
    """The start of the minute a moment falls in."""
    return moment.replace(second=0, microsecond=0)


def requests_per_minute(now: datetime, minutes: int = 60) -> list[int]:
    """Request counts of the last `minutes` minutes, oldest first; the last is this minute."""
    first = minute_floor(now) - timedelta(minutes=minutes - 1)
    rows = query_all(
        f"SELECT {minute_sql('created_at')}, COUNT(*) FROM usage_record "
        "WHERE created_at >= ? GROUP BY 1",
        (db_time(first),),
    )
    counts = {str(bucket).replace("T", " "): int(count) for bucket, count in rows}
    buckets = (first + timedelta(minutes=i) for i in range(minutes))
    return [counts.get(b.strftime("%Y-%m-%d %H:%M"), 0) for b in buckets]


def search_terms(search: str) -> list[str]:
    """The lower-cased terms of a filter text."""
    return [term for term in search.lower().split() if term]


def term_clause(columns: Iterable[str], terms: list[str]) -> tuple[str, list[str]]:
    """SQL (' AND ...') requiring every term in one of the columns, and its parameters."""
    names = list(columns)
    sql, params = "", []
    for term in terms:
        sql += " AND (" + " OR ".join(contains_sql(c) for c in names)
        sql += ")"
        params += [term] * len(names)
    return sql, params


_RECENT_SQL = """
SELECT r.id, r.request_id, u.email, r.model, r.provider, r.input_tokens, r.output_tokens,
       r.cost_nanos, r.status, r.error_code, r.stream, r.estimated, r.duration_ms, r.created_at,
       r.user_id
FROM usage_record r JOIN "user" u ON u.id = r.user_id
WHERE 1 = 1
"""


def recent_requests(
    limit: int = 200, search: str = "", user_id: int | None = None
) -> list[RequestRow]:
    """The newest requests first, optionally one user's, filtered by text."""
    where, params = term_clause(
        ("u.email", "r.model", "r.status", "r.error_code", "r.request_id"), search_terms(search)
    )
    sql = _RECENT_SQL + where
    args: list[Any] = list(params)
    if user_id is not None:
        sql += " AND r.user_id = ?"
        args.append(user_id)
    sql += " ORDER BY r.created_at DESC, r.id DESC LIMIT ?"
    args.append(max(1, min(limit, MAX_ROWS)))
    return [_request_row(row) for row in query_all(sql, args)]


def _request_row(row: tuple[Any, ...]) -> RequestRow:
    return RequestRow(
        id=int(row[0]),
        request_id=row[1],
        email=row[2],
        model=row[3],
        provider=row[4],
        input_tokens=int(row[5]),
        output_tokens=int(row[6]),
        cost_nanos=int(row[7]),
        status=row[8],
        error_code=row[9],
        stream=bool(row[10]),
        estimated=bool(row[11]),
        duration_ms=int(row[12]),
        created_at=parse_time(row[13]),
        user_id=int(row[14]),
    )


def usage_totals(user_id: int) -> UsageTotals:
    """Request count, tokens and spend of one user, all time."""
    row = aggregate(
        "SELECT COUNT(*), COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0), "
        "COALESCE(SUM(cost_nanos), 0) FROM usage_record WHERE user_id = ?",
        (user_id,),
    )
    return UsageTotals(*(int(v) for v in row))


def last_activity(user_ids: list[int]) -> dict[int, datetime]:
    """When each user last used one of their API keys (users that never did are absent).

    Key use is recorded at most once a minute per key, so this is exact to the minute, and it
    reads the small api_key table instead of scanning every request of every user.
    """
    if not user_ids:
        return {}
    marks = ",".join("?" * len(user_ids))
    rows = query_all(
        f"SELECT user_id, MAX(last_used_at) FROM api_key WHERE user_id IN ({marks}) "
        "AND last_used_at IS NOT NULL GROUP BY user_id",
        user_ids,
    )
    return {int(user_id): parse_time(moment) for user_id, moment in rows}


def last_seen(user_id: int, signed_in: datetime | None) -> datetime | None:
    """When a user was last seen: signing in (the stored mark) or using an API key, whichever
    is later (the dashboard and `users show` agree)."""
    marks = [m for m in (signed_in, last_activity([user_id]).get(user_id)) if m is not None]
    return max(marks) if marks else None


def user_counts() -> tuple[int, int]:
    """How many accounts exist, and how many of them are disabled."""
    row = aggregate(
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN status = 'disabled' THEN 1 ELSE 0 END), 0) "
        'FROM "user"'
    )
    return int(row[0]), int(row[1])
