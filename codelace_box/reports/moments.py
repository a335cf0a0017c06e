"""The moments an operator types (`--since`, `--until`, the dashboard's windows): an ISO date or
date-time (UTC unless it says otherwise; a date with an offset: its midnight there) or a span
back from now (`24h`, `7d`)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from codelace_box.db.core import iso_to_utc, utcnow
from codelace_box.errors import InvalidRequest

_RELATIVE = re.compile(r"^(\d{1,5})([hd])$", re.ASCII)


def parse_moment(text: str, now: datetime | None = None, option: str = "--since") -> datetime:
    """A naive UTC moment from `text`; InvalidRequest naming `option` when it is neither form."""
    value = text.strip()
    relative = _RELATIVE.match(value)
    if relative:
        amount, unit = int(relative[1]), relative[2]
        span = timedelta(hours=amount) if unit == "h" else timedelta(days=amount)
        return (now or utcnow()) - span
    try:
        moment = iso_to_utc(value) if value else None
    except (ValueError, OverflowError):  # OverflowError: past year 9999 (or before 1) in UTC
        moment = None
    if moment is None:
        raise InvalidRequest(
            f"{option} {text!r}: expected an ISO date (2026-03-01, 2026-03-01T12:00) or 24h / 7d",
            param=option.removeprefix("--"),
        )
    return moment
