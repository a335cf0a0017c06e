"""Sliding-window rate limits kept in the database (RateEvent), so every worker shares them.

A `Limit` allows `max_events` in any `window_sec`. `hit()` checks several limits at once in
one IMMEDIATE transaction and records one event in each bucket only when all of them allow
it; otherwise it raises `LimitsReached` (a `RateLimited`, naming the full buckets) with the
seconds until the tightest one frees a slot.
`give_back()` uncounts the events of one `hit()` whose action then did not happen (by their
row ids, so any worker or box may, and no other event is touched). Windows are read on this
process's wall clock: an event stamped ahead of it counts as made now (`_wait_sec`).
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from codelace_box.db.core import exclusive, utcnow, write_transaction
from codelace_box.db.models import RateEvent
from codelace_box.errors import RateLimited

# The longest window auth.rate_limit_window_sec may have (config.schema.MAX_RATE_WINDOW_SEC
# refuses more; a test holds the two equal); older events belong to none.
MAX_WINDOW_SEC = 86400
RETENTION_SEC = MAX_WINDOW_SEC
PRUNE_INTERVAL_SEC = 60.0
IPV6_CLIENT_PREFIX = 64  # one IPv6 subscriber holds a whole /64
BUCKET_CHARS = 255  # rate_event.bucket is a VARCHAR(255), which PostgreSQL holds it to
_last_prune = -PRUNE_INTERVAL_SEC


@dataclass(frozen=True)
class Limit:
    """At most `max_events` in `bucket` per `window_sec`; `what` names it in the 429 message
    ("too many <what>"), unless `says` words the refusal itself."""

    bucket: str
    max_events: int
    window_sec: int
    what: str
    says: str = ""


class LimitsReached(RateLimited):
    """A `hit()` refused: `full` holds the (stored) buckets of every limit that was full, the
    message and the wait are the tightest one's."""

    def __init__(self, message: str, retry_after_sec: int, full: frozenset[str]) -> None:
        super().__init__(message, retry_after_sec)
        self.full = full


def _wait_sec(limit: Limit, now: datetime) -> float:
    """Seconds until `limit` allows one more event (0 if it allows one now). An event stamped
    after `now` (a clock that ran ahead and was set back, another box's fast clock) counts as
    made now: it still counts, for one window, not until this clock reaches its stamp."""
    start = now - timedelta(seconds=limit.window_sec)
    RateEvent.delete().where(
        RateEvent.bucket == limit.bucket, RateEvent.created_at <= start
    ).execute()
    RateEvent.update(created_at=now).where(
        RateEvent.bucket == limit.bucket, RateEvent.created_at > now
    ).execute()  # committed with a refusal too: hit() raises after its transaction
    in_window = RateEvent.select().where(RateEvent.bucket == limit.bucket)
    count = in_window.count()
    if count < limit.max_events:
        return 0.0
    # The event whose leaving brings the count below the maximum.
    freeing = in_window.order_by(RateEvent.created_at).offset(count - limit.max_events).first()
    assert freeing is not None
    return (freeing.created_at - start).total_seconds()


def wait_in_words(seconds: int) -> str:
    """A wait as a person says it, never shorter than it is: under a minute in seconds ('40
    seconds'), else in whole minutes rounded up ('15 minutes' for 850 s), from an hour on in
    hours and minutes ('1 hour 30 minutes')."""

    def unit(n: int, name: str) -> str:
        return f"{n} {name}{'' if n == 1 else 's'}"

    if seconds < 60:
        return unit(max(1, seconds), "second")
    hours, minutes = divmod(math.ceil(seconds / 60), 60)
    parts = [unit(hours, "hour")] if hours else []
    return " ".join(parts + ([unit(minutes, "minute")] if minutes else []))


def stored_bucket(bucket: str) -> str:
    """A bucket's name as stored: one longer than BUCKET_CHARS (named after an address of up
    to 254 characters) keeps its start and ends in a digest of the whole, so it fits the column
    and names stay apart (a longer one was a 500 on PostgreSQL)."""
    if len(bucket) <= BUCKET_CHARS:
        return bucket
    digest = hashlib.sha256(bucket.encode()).hexdigest()
    return f"{bucket[: BUCKET_CHARS - len(digest) - 1]}#{digest}"


def hit(limits: Sequence[Limit]) -> list[int]:
    """Count one event against every limit, or raise LimitsReached if any is exhausted; the
    ids of the events counted (for `give_back`)."""
    limits = [replace(limit, bucket=stored_bucket(limit.bucket)) for limit in limits]
    now = utcnow()
    with write_transaction() as tx:
        for bucket in sorted({limit.bucket for limit in limits}):  # one order: no deadlock
            exclusive(tx, f"rate:{bucket}")  # boxes sharing a database count one at a time
        _prune_old(now)
        waits = [(_wait_sec(limit, now), limit) for limit in limits]
        wait, tightest = max(waits, key=lambda pair: pair[0])
        if wait <= 0:
            return [RateEvent.create(bucket=limit.bucket, created_at=now).id for limit in limits]
    seconds = max(1, math.ceil(wait))
    full = frozenset(limit.bucket for waited, limit in waits if waited > 0)
    said = tightest.says or f"too many {tightest.what}"
    raise LimitsReached(f"{said}; try again in {wait_in_words(seconds)}", seconds, full)


def give_back(event_ids: Sequence[int]) -> None:
    """Uncount the events a `hit()` counted for an action that did not happen after all."""
    if event_ids:
        with write_transaction():
            RateEvent.delete().where(RateEvent.id.in_(list(event_ids))).execute()


def _prune_old(now: datetime) -> None:
    """Now and then, drop events too old for any window (buckets nobody hits any more)."""
    global _last_prune  # noqa: PLW0603 - a per-process throttle, nothing else
    clock = time.monotonic()
    if clock - _last_prune < PRUNE_INTERVAL_SEC:
        return
    _last_prune = clock
    cutoff = now - timedelta(seconds=RETENTION_SEC)
    RateEvent.delete().where(RateEvent.created_at < cutoff).execute()


def client_bucket(address: str) -> str:
    """The part of a client address the per-address limits count: an IPv4 address (also
    IPv4-mapped), the /64 of an IPv6 one, without the port a proxy may have written beside it
    (`_without_port`); anything else (a socket name) as it is."""
    try:
        ip = ipaddress.ip_address(_without_port(address).strip("[]"))
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, IPV6_CLIENT_PREFIX), strict=False))
    return str(ip)


def _without_port(address: str) -> str:
    """An address without the client's port that a proxy wrote beside it in X-Forwarded-For
    (Azure Application Gateway: `203.0.113.7:50123`, `[2001:db8::1]:443`), so that each
    connection of one client does not get a budget of its own. A bare IPv6 address (its last
    group is no port) as it is."""
    host, colon, port = address.rpartition(":")
    if not (colon and port.isdigit()):
        return address
    if (host.startswith("[") and host.endswith("]")) or ":" not in host:
        return host
    return address
