"""Timestamps as the database stores them: naive UTC, written as text in one form
('YYYY-MM-DD HH:MM:SS.ffffff', `db_time()`), read back from text (SQLite) or a datetime
(PostgreSQL's TIMESTAMP) by `parse_time()`, and their minute and day buckets. Pure functions,
the same on both engines (db/core.py re-exports them; the SQL side is db/dialect.py's
`minute_sql()`).
"""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

if sys.version_info >= (3, 12):

    def utcnow() -> datetime:
        """Now, as a naive UTC datetime (how timestamps are stored)."""
        return datetime.now(UTC).replace(tzinfo=None)

else:

    def utcnow() -> datetime:
        """Now, as a naive UTC datetime (how timestamps are stored). `datetime.utcnow` until
        3.12 deprecates it: 0.15 us against 1.3 us for `now(UTC).replace(tzinfo=None)` (whose
        keyword `replace` is the cost), and the hot path takes the time two or three times."""
        return datetime.utcnow()


def iso_z(moment: datetime | None) -> str | None:
    """ISO 8601 UTC with a Z, as the API shows timestamps."""
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


# An ISO 8601 date at the start of a text (a calendar date, or a week date as fromisoformat
# takes it: 2026-W05-7, 2026W057, 2026-W05), and the character after it. A week's day is one
# digit: `2026-W05-05:00` is the week at UTC-5, not day 0 at 5:00.
_DATE_HEAD = re.compile(
    r"^(\d{4}-\d{2}-\d{2}|\d{8}|\d{4}-W\d{2}(?:-\d(?!\d))?|\d{4}W\d{2}\d?)(.?)", re.ASCII
)


def iso_to_utc(text: str) -> datetime:
    """ISO 8601 text (a date, or a date and time; no offset: UTC; `Z` or `z`: UTC) as a naive
    UTC moment. A date with an offset is its midnight there (`2026-12-31+05:00`: 19:00 UTC the
    day before): Python's fromisoformat takes any character between date and time, so it read
    the offset as a time of day; only `T`, `t` or a space part them here. ValueError when the
    text is no such moment (also one with a NUL: CPython's fromisoformat skips one after a
    time, so `2030-01-01T00:00` and a NUL was that moment); OverflowError when it lies outside
    years 1 to 9999 in UTC."""
    if "\x00" in text:
        raise ValueError(f"a NUL character is no part of a time: {text!r}")
    if text[-1:] in ("z", "Z"):
        text = text[:-1] + "+00:00"
    head = _DATE_HEAD.match(text)
    if head and head[2] in ("+", "-"):
        text = head[1] + "T00:00" + text[head.end(1) :]
    elif head and head[2] not in ("", "T", "t", " "):
        raise ValueError(f"date and time must be parted by T or a space: {text!r}")
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)  # OverflowError out of range
    return moment


EARLIEST = "0001-01-01 00:00:00"  # a stored timestamp before any other (both engines read it)


# The second `db_time` wrote last: its start, its end, its text and that text with the dot. A
# tuple replaced whole, so a thread reads one second's four (at first a second no moment is in).
_SECOND: tuple[datetime, datetime, str, str] = (datetime.max, datetime.min, "", "")
_DIGITS = tuple(f"{n:03d}" for n in range(1000))  # a microsecond's six digits, in two halves
_ONE_SECOND = timedelta(seconds=1)


def db_time(moment: datetime) -> str:
    """A moment in the stored text form of timestamps ('YYYY-MM-DD HH:MM:SS.ffffff'): `str()`
    of the naive moment, the fraction only when its microseconds are not zero. A moment in the
    second written last is written from that second's text (the hot path's two a call:
    `str()` formats all seven fields, about 8,400 instructions; this 2,700)."""
    start, end, text, dotted = _SECOND
    if moment.tzinfo is None and start <= moment < end:
        micro = moment.microsecond
        return f"{dotted}{_DIGITS[micro // 1000]}{_DIGITS[micro % 1000]}" if micro else text
    return _new_second(moment)


def _new_second(moment: datetime) -> str:
    """`db_time` of a moment outside the kept second; a naive one's second is kept."""
    global _SECOND  # noqa: PLW0603 - one kept second, replaced whole
    text = str(moment.replace(tzinfo=None))
    if moment.tzinfo is None and type(moment) is datetime and moment < datetime.max - _ONE_SECOND:
        start = moment.replace(microsecond=0)
        _SECOND = (start, start + _ONE_SECOND, text[:19], text[:19] + ".")
    return text


def parse_time(value: Any) -> datetime:
    """A stored timestamp back to a naive UTC datetime."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    return datetime.fromisoformat(str(value)).replace(tzinfo=None)


def minute_of(moment: str | datetime) -> str:
    """The minute bucket of a stored timestamp ('YYYY-MM-DD HH:MM'), as `minute_sql` makes it:
    the start of its text (a datetime, as PostgreSQL returns one, in `db_time`'s text)."""
    text = moment if isinstance(moment, str) else db_time(moment)
    return text[:16]


def day_of(moment: str | datetime) -> str:
    """The day bucket of a stored timestamp ('YYYY-MM-DD'), as `day_sql` makes it."""
    text = moment if isinstance(moment, str) else db_time(moment)
    return text[:10]
