"""An upstream's Retry-After header as whole seconds to wait (RFC 9110: delta-seconds or an
HTTP-date; OpenAI's `retry-after-ms` first, as its SDK reads them), rounded up, passed on to the
client of a relayed 429 or 503 (gateway/upstream.py); and the wait Google gives in a 429's body
(`error.details[]` RetryInfo `retryDelay`, "26.2s"), which says the limit passes."""

from __future__ import annotations

import math
import re
import time
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any

from codelace_box.errors import CodelaceError, RateLimited
from codelace_box.providers.openai_errors import error_body

MAX_RETRY_AFTER_SEC = 86_400  # a longer wait is not a plausible instruction: treated as absent
_DELTA_SECONDS_RE = re.compile(r"\d{1,9}(\.\d{1,6})?")


def upstream_wait_sec(retry_after: str | None, retry_after_ms: str | None) -> int:
    """Seconds to wait from an upstream's `retry-after-ms` (OpenAI's, in milliseconds) when it
    is a plausible number, else from its Retry-After (retry_after_sec); rounded up."""
    millis = (retry_after_ms or "").strip()
    if _DELTA_SECONDS_RE.fullmatch(millis):
        seconds = math.ceil(float(millis) / 1000)
        if seconds <= MAX_RETRY_AFTER_SEC:
            return max(1, seconds)
    return retry_after_sec(retry_after)


def retry_after_sec(raw: str | None, now: float | None = None) -> int:
    """Seconds to wait from a Retry-After header: delta-seconds, or an HTTP-date (RFC 9110) as
    the seconds from `now` (wall-clock seconds; default the clock) until it, both rounded up;
    absent, malformed (inf, nan, 1e400, negative, garbage), a date already past, or over a day
    counts as absent (1 s)."""
    text = (raw or "").strip()
    if _DELTA_SECONDS_RE.fullmatch(text):  # (a fraction, which some send, rounded up)
        seconds = math.ceil(float(text))
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


def google_retry_delay(payload: bytes) -> int | None:
    """The seconds (rounded up) of the RetryInfo `retryDelay` in a Google error body (Gemini's
    OpenAI endpoint words a per-minute limit as an exceeded quota, and says when it passes);
    None when it gives none."""
    body = error_body(payload)
    error = body.get("error") if isinstance(body, dict) else None
    details: Any = error.get("details") if isinstance(error, dict) else None
    for detail in details if isinstance(details, list) else ():
        delay = detail.get("retryDelay") if isinstance(detail, dict) else None
        if isinstance(delay, str) and _DELTA_SECONDS_RE.fullmatch(delay.removesuffix("s")):
            return retry_after_sec(delay.removesuffix("s"))
    return None


def sooner(last: CodelaceError | None, error: CodelaceError) -> CodelaceError:
    """`error`, the wait of a rate limit that follows another one (on another key) cut to the
    shorter of the two: a client of a provider whose every key is limited comes back when the
    first key is free again (its retry fails over to it), not when the last one tried is."""
    if isinstance(last, RateLimited) and isinstance(error, RateLimited):
        error.retry_after_sec = min(error.retry_after_sec, last.retry_after_sec)
    return error
