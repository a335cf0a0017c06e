"""`usage report` over long windows: the whole UTC days of the window from the per-day totals
the settlement keeps (key_day_usage per key, summed per account for `--by user`, usage_rollup
'day' per model), only the partial days at its edges from the usage rows.

The figures are the usage rows' own (the same requests, tokens, spend and errors: the
settlement counts each row into its day in the transaction that writes it), at most a day's
rows read at each edge instead of every row of the window; and retention, which deletes usage
rows but never the day totals, no longer makes the whole days short. Per key, key -1 is a
group of its own, its key not known: what was counted only in the accounts' days before
migration 22 (rows retention deleted before migration 19, which filled the key days from the
rows there were, and what an account's day held beyond its keys' days when migration 22
dropped the account days).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from codelace_box.db.core import query_all
from codelace_box.reports.spend import SpendRow, check_window, finish, rows_report

_FIGURES = (
    "COALESCE(SUM(d.requests), 0), COALESCE(SUM(d.input_tokens), 0), "
    "COALESCE(SUM(d.output_tokens), 0), COALESCE(SUM(d.cost_nanos), 0), "
    "COALESCE(SUM(d.errors), 0)"
)
UNKNOWN_KEY = "(key not known: counted per account only, before migration 22)"
_KEY_ID = "CASE WHEN d.api_key_id < 0 THEN '-' ELSE COALESCE(k.uuid, '') END"
_KEY_LABEL = f"CASE WHEN d.api_key_id < 0 THEN '{UNKNOWN_KEY}' ELSE COALESCE(k.key_prefix, '') END"
_DAY_SQL = {  # the days [first, stop) summed per group, as spend._SELECT groups the rows
    "user": (
        f"SELECT u.uuid, u.email, {_FIGURES} FROM key_day_usage d "
        'JOIN "user" u ON u.id = d.user_id WHERE d.day >= ? AND d.day < ? '
        "GROUP BY u.uuid, u.email"
    ),
    "model": (
        f"SELECT d.model, d.model, {_FIGURES} FROM usage_rollup d "
        "WHERE d.period = 'day' AND d.bucket >= ? AND d.bucket < ? GROUP BY d.model"
    ),
    "key": (  # api_key_id 0 (no key) and a key since deleted: '', as spend._COLUMNS has them
        f"SELECT {_KEY_ID}, {_KEY_LABEL}, {_FIGURES} FROM key_day_usage d "
        "LEFT JOIN api_key k ON k.id = d.api_key_id WHERE d.day >= ? AND d.day < ? "
        f"GROUP BY {_KEY_ID}, {_KEY_LABEL}"
    ),
}


@dataclass(frozen=True)
class WholeDays:
    """The whole UTC days of a window: from `first` up to `stop` (excluded)."""

    first: date
    stop: date

    @property
    def last(self) -> date:
        return self.stop - timedelta(days=1)


def whole_days(start: datetime, end: datetime) -> WholeDays | None:
    """The whole UTC days inside [start, end), or None when there is none."""
    first = start.date()
    if start != datetime.combine(first, time()):
        if first == date.max:
            return None
        first += timedelta(days=1)
    stop = end.date()
    return WholeDays(first, stop) if first < stop else None


def days_read(by: str, since: datetime | None, until: datetime | None) -> WholeDays | None:
    """The whole days `daily_spend_report` reads from the day totals (None: none)."""
    start, end = check_window(by, since, until)
    return whole_days(start, end) if by in _DAY_SQL else None


_FIRST_DAY_SQL = {  # the first day that holds totals, per grouping
    "user": "SELECT MIN(day) FROM key_day_usage",
    "key": "SELECT MIN(day) FROM key_day_usage",
    "model": "SELECT MIN(bucket) FROM usage_rollup WHERE period = 'day'",
}


def days_counted(
    by: str, since: datetime | None, until: datetime | None, today: date
) -> WholeDays | None:
    """The whole days of `days_read` as an operator reads them: an open window's ends are
    the first day with totals and today (not year 1 and year 9999); None when none."""
    days = days_read(by, since, until)
    if days is None:
        return None
    held = query_all(_FIRST_DAY_SQL[by])
    first = max(days.first, date.fromisoformat(str(held[0][0])[:10])) if held[0][0] else days.first
    stop = min(days.stop, today + timedelta(days=1))
    return WholeDays(first, stop) if first < stop else None


def daily_spend_report(
    by: str, since: datetime | None = None, until: datetime | None = None
) -> list[SpendRow]:
    """spend.spend_report's figures, the whole days from the day totals (per user, key, model),
    the rest of the window from the usage rows. Its reads grow with the number of days and
    groups, not with the rows: run it off the event loop all the same."""
    start, end = check_window(by, since, until)
    days = whole_days(start, end) if by in _DAY_SQL else None
    if days is None:
        return finish(by, rows_report(by, start, end))
    head_end = datetime.combine(days.first, time())
    tail_start = datetime.combine(days.stop, time())
    found = _day_rows(by, days)
    if start < head_end:
        found += rows_report(by, start, head_end)
    if tail_start < end:
        found += rows_report(by, tail_start, end)
    return finish(by, _merged(found))


def _day_rows(by: str, days: WholeDays) -> list[SpendRow]:
    rows = query_all(_DAY_SQL[by], (days.first.isoformat(), days.stop.isoformat()))
    return [_row(row) for row in rows]


def _row(row: tuple[Any, ...]) -> SpendRow:
    requests, tokens_in, tokens_out, spend, errors = (int(v) for v in row[2:7])
    return SpendRow(str(row[0]), str(row[1]), requests, tokens_in, tokens_out, spend, errors)


def _merged(rows: list[SpendRow]) -> list[SpendRow]:
    """One row per group: the days' and the edges' figures added up."""
    groups: dict[tuple[str, str], list[int]] = {}
    for r in rows:
        sums = groups.setdefault((r.key, r.label), [0] * 5)
        figures = (r.requests, r.input_tokens, r.output_tokens, r.spend_nanos, r.errors)
        for i, value in enumerate(figures):
            sums[i] += value
    return [
        SpendRow(key, label, requests, tokens_in, tokens_out, spend, errors)
        for (key, label), (requests, tokens_in, tokens_out, spend, errors) in groups.items()
        if requests
    ]
