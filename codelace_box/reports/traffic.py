"""Read-only traffic statistics for the operator's dashboard: figures from the running totals
and rollups, lists from the usage records.

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

from codelace_box.accounts.users import search_form
from codelace_box.db.core import aggregate, db_time, parse_time, query_all
from codelace_box.db.dialect import contains_sql

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


_TALLY_SQL = (
    "COALESCE(SUM({r}), 0), COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0), "
    "COALESCE(SUM(cost_nanos), 0), COALESCE(SUM({e}), 0)"
)
_ROWS_SQL = (
    "SELECT "
    + _TALLY_SQL.format(r="1", e="CASE WHEN status = 'error' THEN 1 ELSE 0 END")
    + " FROM usage_record WHERE created_at >= ? AND created_at < ?"
)
_MINUTES_SQL = (
    "SELECT "
    + _TALLY_SQL.format(r="requests", e="errors")
    + " FROM usage_rollup WHERE period = 'minute' AND bucket >= ? AND bucket < ?"
)
_END_OF_TIME = "9999-12-31 23:59"


def minute_floor(moment: datetime) -> datetime:
    """The start of the minute a moment falls in."""
    return moment.replace(second=0, microsecond=0)


def _minute_text(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M")


def window_stats(since: datetime) -> WindowStats:
    """Requests, tokens, spend, errors and active users from a moment on.

    The whole minutes come from the per-minute rollups; only the part of the first minute
    from `since` on is read from usage rows (at most a minute of them): the cost does not grow
    with the window or with history. Active users: accounts whose last request is that recent.
    """
    first_whole = minute_floor(since)
    if first_whole < since:
        first_whole += timedelta(minutes=1)
    head = aggregate(_ROWS_SQL, (db_time(since), db_time(first_whole)))
    whole = aggregate(_MINUTES_SQL, (_minute_text(first_whole), _END_OF_TIME))
    active = aggregate(
        "SELECT COUNT(*) FROM account_usage WHERE last_request_at >= ?", (db_time(since),)
    )
    requests, input_tokens, output_tokens, spend, errors = (
        int(a) + int(b) for a, b in zip(head, whole, strict=True)
    )
    return WindowStats(requests, input_tokens, output_tokens, spend, errors, int(active[0]))


def requests_per_minute(now: datetime, minutes: int = 60) -> list[int]:
    """Request counts of the last `minutes` minutes, oldest first; the last is this minute
    (from the per-minute rollups)."""
    first = minute_floor(now) - timedelta(minutes=minutes - 1)
    rows = query_all(
        "SELECT bucket, SUM(requests) FROM usage_rollup WHERE period = 'minute' AND bucket >= ? "
        "GROUP BY bucket",
        (_minute_text(first),),
    )
    counts = {str(bucket): int(count) for bucket, count in rows}
    buckets = (first + timedelta(minutes=i) for i in range(minutes))
    return [counts.get(_minute_text(b), 0) for b in buckets]


def search_terms(search: str) -> list[str]:
    """The lower-cased terms of a filter text."""
    return [term for term in search.lower().split() if term]


def term_clause(columns: Iterable[str], terms: list[str]) -> tuple[str, list[str]]:
    """SQL (' AND ...') requiring every term in one of the columns, and its parameters. A term
    is looked for as typed and in the form addresses are stored in (`bücher` as
    xn--bcher-kva: accounts/users.py search_form)."""
    names = list(columns)
    sql, params = "", []
    for term in terms:
        forms = list(dict.fromkeys((term, search_form(term))))
        sql += " AND (" + " OR ".join(contains_sql(c) for c in names for _ in forms)
        sql += ")"
        params += [form for _ in names for form in forms]
    return sql, params


# a failed request's status as Activity shows it (error:upstream_error): found as typed from there
SHOWN_STATUS = "r.status || ':' || r.error_code"

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
    sql, args = recent_requests_query(limit, search, user_id)
    return [_request_row(row) for row in query_all(sql, args)]


def recent_requests_query(limit: int, search: str, user_id: int | None) -> tuple[str, list[Any]]:
    """The statement of `recent_requests` and its parameters. One account's rows come newest
    first in id order (rows are written as they settle), along its index by user as the
    customer's own page reads them (reports/usage.py): ordering them by created_at sorted every
    row of the account (seconds for one with a million rows)."""
    where, params = term_clause(
        ("u.email", "u.uuid", "r.model", "r.status", "r.error_code", "r.request_id", SHOWN_STATUS),
        search_terms(search),
    )
    sql = _RECENT_SQL + where
    args: list[Any] = list(params)
    if user_id is not None:
        sql += " AND r.user_id = ? ORDER BY r.id DESC LIMIT ?"
        args.append(user_id)
    else:
        sql += " ORDER BY r.created_at DESC, r.id DESC LIMIT ?"
    args.append(max(1, min(limit, MAX_ROWS)))
    return sql, args


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
    """Request count, tokens and spend of one user, all time (the running totals kept in the
    settlement transaction: right even after retention deleted old usage rows)."""
    row = query_all(
        "SELECT requests, input_tokens, output_tokens, cost_nanos FROM account_usage "
        "WHERE user_id = ?",
        (user_id,),
    )
    return UsageTotals(*(int(v) for v in row[0])) if row else UsageTotals(0, 0, 0, 0)


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
