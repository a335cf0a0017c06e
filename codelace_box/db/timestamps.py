"""Timestamps as the database stores them: naive UTC, written as text in one form
('YYYY-MM-DD HH:MM:SS.ffffff', `db_time()`), read back from text (SQLite) or a datetime
(PostgreSQL's TIMESTAMP) by `parse_time()`, and their minute and day buckets. Pure functions,
the same on both engines (db/core.py re-exports them; the SQL side is db/dialect.py's
`minute_sql()`).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
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


EARLIEST = "0001-01-01 00:00:00"  # a stored timestamp before any other (both engines read it)


def db_time(moment: datetime) -> str:
    """A moment in the stored text form of timestamps ('YYYY-MM-DD HH:MM:SS.ffffff')."""
    return str(moment.replace(tzinfo=None))


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
