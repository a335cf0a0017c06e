"""An upstream's Retry-After header as whole seconds to wait (RFC 9110: delta-seconds or an
HTTP-date), passed on to the client of a relayed 429 or 503 (gateway/upstream.py)."""

from __future__ import annotations

import math
import re
import time
from datetime import UTC
from email.utils import parsedate_to_datetime

MAX_RETRY_AFTER_SEC = 86_400  # a longer wait is not a plausible instruction: treated as absent
_DELTA_SECONDS_RE = re.compile(r"\d{1,9}(\.\d{1,6})?")


def retry_after_sec(raw: str | None, now: float | None = None) -> int:
    """Seconds to wait from a Retry-After header: delta-seconds, or an HTTP-date (RFC 9110) as
    the seconds from `now` (wall-clock seconds; default the clock) until it, rounded up; absent,
    malformed (inf, nan, 1e400, negative, garbage), a date already past, or over a day counts
    as absent (1 s)."""
    text = (raw or "").strip()
    if _DELTA_SECONDS_RE.fullmatch(text):
        seconds = int(text.partition(".")[0])
    else:
        seconds = _seconds_until(text, time.time() if now is None else now)
    return max(1, seconds) if seconds <= MAX_RETRY_AFTER_SEC else 1


def _seconds_until(http_date: str, now: float) -> int:
    """The whole seconds (rounded up) from `now` until an HTTP-date; 0 when it is none."""
    try:
        moment = parsedate_to_datetime(http_date)
    except (TypeError, ValueError, IndexError, OverflowError):
        return 0
    if moment.tzinfo is None:  # RFC 9110: an HTTP-date is GMT; "-0000" reads as naive
        moment = moment.replace(tzinfo=UTC)
    return math.ceil(moment.timestamp() - now)
