"""Who spent what: the usage records of a time window grouped by user, API key or model, with
requests, tokens, spend and errors per group (for `usage report` and the dashboard)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from codelace_box.db.core import db_time, query_all
from codelace_box.errors import InvalidRequest

GROUPINGS = ("user", "key", "model")
_END_OF_TIME = datetime.max  # an open end: any moment --since can name comes before it
KEYS_PER_LOOKUP = 1000  # keys described by one statement (_with_key_details)

_SELECT = (
    "SELECT {key}, {label}, COUNT(*), COALESCE(SUM(r.input_tokens), 0), "
    "COALESCE(SUM(r.output_tokens), 0), COALESCE(SUM(r.cost_nanos), 0), "
    "COALESCE(SUM(CASE WHEN r.status = 'error' THEN 1 ELSE 0 END), 0) "
    'FROM usage_record r JOIN "user" u ON u.id = r.user_id '
    "LEFT JOIN api_key k ON k.id = r.api_key_id "
    "WHERE r.created_at >= ? AND r.created_at < ? GROUP BY {key}, {label}"
)
_COLUMNS = {  # the group's key and what the operator reads
    "user": ("u.uuid", "u.email"),
    "key": ("COALESCE(k.uuid, '')", "COALESCE(k.key_prefix, '')"),
    "model": ("r.model", "r.model"),
}


@dataclass(frozen=True)
class SpendRow:
    """One group of a report: its id (a user or key UUID, a model id), what to call it, and
    its figures."""

    key: str
    label: str
    requests: int
    input_tokens: int
    output_tokens: int
    spend_nanos: int
    errors: int
    detail: str = ""  # for a key: its name and its user's email


def spend_report(
    by: str, since: datetime | None = None, until: datetime | None = None
) -> list[SpendRow]:
    """The window's usage grouped `by` user, key or model, the biggest spend first, every
    figure summed from the usage rows (reports/spend_days.py reads the daily totals)."""
    start, end = check_window(by, since, until)
    return finish(by, rows_report(by, start, end))


def check_window(
    by: str, since: datetime | None, until: datetime | None
) -> tuple[datetime, datetime]:
    """The window's (start, end), open ends made the earliest and latest moments; refused
    when `by` or the window makes no sense."""
    if by not in GROUPINGS:
        raise InvalidRequest(f"group by one of {', '.join(GROUPINGS)}, got {by!r}")
    start, end = since or datetime.min, until or _END_OF_TIME
    if start >= end:
        raise InvalidRequest("the start of the window must come before its end")
    return start, end


def rows_report(by: str, start: datetime, end: datetime) -> list[SpendRow]:
    """The usage rows of [start, end) grouped `by` (unsorted, keys not yet described)."""
    key, label = _COLUMNS[by]
    rows = query_all(_SELECT.format(key=key, label=label), (db_time(start), db_time(end)))
    return [_row(row) for row in rows]


def finish(by: str, found: list[SpendRow]) -> list[SpendRow]:
    """A report's groups as shown: keys described, the biggest spend first."""
    if by == "key":
        found = _with_key_details(found)
    return sorted(found, key=lambda r: (-r.spend_nanos, -r.requests, r.label))


def _row(row: tuple[Any, ...]) -> SpendRow:
    requests, tokens_in, tokens_out, spend, errors = (int(v) for v in row[2:7])
    return SpendRow(str(row[0]), str(row[1]), requests, tokens_in, tokens_out, spend, errors)


def _with_key_details(rows: list[SpendRow]) -> list[SpendRow]:
    """Each key's name and the email of its user (a request with no key: the portal)."""
    ids = [r.key for r in rows if r.key]
    names: dict[str, str] = {}
    # a statement per KEYS_PER_LOOKUP keys: SQLite takes at most 32,766 parameters, and every
    # otp/verify mints a key (a report of all of them failed past that many)
    for first in range(0, len(ids), KEYS_PER_LOOKUP):
        part = ids[first : first + KEYS_PER_LOOKUP]
        marks = ",".join("?" * len(part))
        for uuid, name, email in query_all(
            'SELECT k.uuid, k.name, u.email FROM api_key k JOIN "user" u ON u.id = k.user_id '
            f"WHERE k.uuid IN ({marks})",
            part,
        ):
            names[str(uuid)] = f"{name or 'unnamed'} ({email})"
    return [replace(r, label=r.label or "(no key)", detail=names.get(r.key, "")) for r in rows]


def totals(rows: list[SpendRow]) -> SpendRow:
    """The sum of a report's rows."""
    return SpendRow(
        "", "total",
        sum(r.requests for r in rows), sum(r.input_tokens for r in rows),
        sum(r.output_tokens for r in rows), sum(r.spend_nanos for r in rows),
        sum(r.errors for r in rows),
    )  # fmt: skip
