"""The Anthropic containers answered to each user: recorded at settlement, looked up before a
request that names one, deleted by the retention pass once expired (anthropic_container)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from codelace_box.db.core import Tx, query_one, write_transaction
from codelace_box.db.timestamps import db_time, utcnow

# Anthropic keeps a container at most 30 days; an answer's own expiry is usually far sooner
MOST_DAYS = 30
# A row is kept this long past its expiry (clocks apart; an expiry Anthropic extended since)
GRACE = timedelta(days=1)
ID_CHARS = 255  # anthropic_container.container_id's width

_RECORD_SQL = (
    "INSERT INTO anthropic_container (container_id, user_id, expires_at) VALUES (?, ?, ?) "
    "ON CONFLICT (container_id) DO UPDATE SET expires_at = excluded.expires_at "
    "WHERE anthropic_container.user_id = excluded.user_id"
)
_DELETE_SQL = (
    "DELETE FROM anthropic_container WHERE container_id IN (SELECT container_id FROM "
    "anthropic_container WHERE expires_at < ? ORDER BY expires_at LIMIT ?)"
)


def storable_id(container_id: str) -> bool:
    """Whether an id fits the table (255 characters, no NUL, which PostgreSQL takes in no text
    field): an upstream's odd one is not kept (its settlement must not fail), and a request's
    names no container the box keeps."""
    return 0 < len(container_id) <= ID_CHARS and "\x00" not in container_id


def stored_expiry(expires_at: str | None, now: datetime) -> str:
    """Anthropic's `expires_at` (RFC 3339) as the stored text form, within MOST_DAYS of now;
    one missing or unreadable: MOST_DAYS from now."""
    latest = now + timedelta(days=MOST_DAYS)
    try:
        moment = datetime.fromisoformat(expires_at or "")
        if moment.tzinfo is not None:
            moment = moment.astimezone(UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):  # not a time; a year past 9999 once in UTC
        return db_time(latest)
    return db_time(min(moment, latest))


def record_container_in(tx: Tx, user_id: int, container_id: str, expires_at: str | None) -> None:
    """Keep `container_id` as answered to `user_id` (its expiry refreshed), inside the open
    settlement transaction. A container already answered to another user keeps its owner; an
    id the table cannot hold is not kept (and so never named again through the box)."""
    if not storable_id(container_id):
        return
    tx.execute(_RECORD_SQL, (container_id, user_id, stored_expiry(expires_at, utcnow())))


def container_owner(container_id: str) -> int | None:
    """The user a container id was answered to, None for an id the box never answered."""
    row = query_one(
        "SELECT user_id FROM anthropic_container WHERE container_id = ?", (container_id,)
    )
    return None if row is None else int(row[0])


def delete_expired_containers(before: datetime, batch: int) -> int:
    """Delete up to `batch` containers that expired before `before` less GRACE, in one short
    write transaction; how many."""
    with write_transaction() as tx:
        tx.execute(_DELETE_SQL, (db_time(before - GRACE), batch))
        return tx.changes()
