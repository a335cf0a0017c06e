"""The statements over the usage history that stay cheap however long it grows: deleting old
rows and old per-minute rollups in small batches (retention) and reading rows in id order, a
page at a time (export); the newest time stored (what a start clock is compared with).

Plain SQL both engines read (`?` parameters are SQLite's, as everywhere in db/).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from codelace_box.db.core import (
    Row,
    database,
    parse_time,
    query_one,
    write_transaction,
)
from codelace_box.db.snapshot import id_pages, pages_at_one_instant

_DELETE_BATCH_SQL = (
    "DELETE FROM usage_record WHERE id IN (SELECT id FROM usage_record WHERE created_at < ? "
    "ORDER BY created_at LIMIT ?)"
)
_DELETE_MINUTES_SQL = (
    "DELETE FROM usage_rollup WHERE id IN (SELECT id FROM usage_rollup WHERE period = 'minute' "
    "AND bucket < ? ORDER BY bucket LIMIT ?)"
)
_NEWEST_SQL = (  # two index reads: usage_record's created_at index, the ledger's newest id
    "SELECT (SELECT MAX(created_at) FROM usage_record), "
    "(SELECT created_at FROM ledger_entry ORDER BY id DESC LIMIT 1)"
)
EXPORT_COLUMNS = (
    "request_id",
    "created_at",
    "email",
    "key_prefix",
    "model",
    "provider",
    "upstream_model",
    "route",
    "status",
    "error_code",
    "stream",
    "estimated",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cost_nanos",
    "duration_ms",
)
_EXPORT_SQL = (
    "SELECT r.id, r.request_id, r.created_at, u.email, k.key_prefix, r.model, r.provider, "
    "r.upstream_model, r.route, r.status, r.error_code, r.stream, r.estimated, r.input_tokens, "
    "r.output_tokens, r.cache_read_tokens, r.cache_write_tokens, r.cost_nanos, r.duration_ms "
    'FROM usage_record r JOIN "user" u ON u.id = r.user_id '
    "LEFT JOIN api_key k ON k.id = r.api_key_id WHERE r.id > ? AND r.created_at >= ?"
)


def delete_usage_batch(cutoff: str, batch: int) -> int:
    """Delete up to `batch` usage rows created before `cutoff` (stored text form), oldest first,
    in one short write transaction; how many. Never touches the ledger or the totals."""
    with write_transaction() as tx:
        tx.execute(_DELETE_BATCH_SQL, (cutoff, batch))
        return tx.changes()


def delete_minute_rollups_batch(before: str, batch: int) -> int:
    """Delete up to `batch` per-minute rollups of minutes before `before` ('YYYY-MM-DD HH:MM'),
    oldest first, in one short write transaction; how many. The per-day rollups stay."""
    with write_transaction() as tx:
        tx.execute(_DELETE_MINUTES_SQL, (before, batch))
        return tx.changes()


def usage_pages(
    since: str, user_id: int | None, page: int = 5000, until: str | None = None
) -> Iterator[list[Row]]:
    """The usage rows created at or after `since` and before `until` (stored text forms; None:
    no end), optionally one user's, in id order, a page of `page` rows at a time. Each row: the
    values of EXPORT_COLUMNS. Every page is read in one snapshot on PostgreSQL, each its own
    short read on SQLite (db/snapshot.py pages_at_one_instant)."""
    sql = _EXPORT_SQL + (" AND r.created_at < ?" if until is not None else "")
    sql += (" AND r.user_id = ?" if user_id is not None else "") + " ORDER BY r.id LIMIT ?"
    filters = [*([until] if until is not None else []), *([user_id] if user_id is not None else [])]
    with pages_at_one_instant(database.obj):
        for rows in id_pages(sql, [since, *filters], page):
            yield [tuple(row[1:]) for row in rows]


def newest_stored_time() -> datetime | None:
    """The newest time the database holds (its newest usage row or ledger entry: the ledger
    is never deleted); None for a database with neither."""
    row = query_one(_NEWEST_SQL)
    times = [parse_time(value) for value in row or () if value is not None]
    return max(times, default=None)
