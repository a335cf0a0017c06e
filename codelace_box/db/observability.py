"""What db/ writes and reads for observability: the audit log, the refusal counters, the
upstream's error text on a usage row and the open alerts (upkeep/watch.py).

The audit chain needs its writers serialized: on SQLite the write lock of BEGIN IMMEDIATE
(`write_transaction`) does it; on PostgreSQL `last_hash` first takes the chain's lock
(`exclusive`, held to the commit, across every box), or two admins writing at once would both
chain to the same entry. created_at is text on both engines: the exact string that was hashed.
The refusal counter is one portable upsert (`INSERT ... ON CONFLICT ... DO UPDATE`).
"""

from __future__ import annotations

from collections.abc import Iterator

from codelace_box.db.core import Row, Tx, exclusive, query_all, query_one, write_transaction
from codelace_box.db.snapshot import id_pages
from codelace_box.db.text import storable_text

AUDIT_COLUMNS = (
    "id, created_at, os_user, client, command, target, before_state, after_state, prev_hash, hash"
)


def last_hash(tx: Tx) -> str:
    """The hash of the newest audit entry ('' when there is none), inside a write transaction
    (which then holds the chain until it commits)."""
    exclusive(tx, "audit_log")
    row = tx.execute("SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1").fetchone()
    return str(row[0]) if row else ""


def insert_audit_entry(tx: Tx, values: tuple[str | None, ...]) -> None:
    """Write one entry: created_at, os_user, client, command, target, before, after,
    prev_hash, hash (in that order)."""
    tx.execute(
        "INSERT INTO audit_log (created_at, os_user, client, command, target, before_state, "
        "after_state, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        values,
    )


def advance_audit_head(tx: Tx, digest: str) -> None:
    """Count one more entry, `digest` the newest (in the transaction that writes it)."""
    tx.execute(
        "INSERT INTO audit_head (id, entries, hash) VALUES (1, 1, ?) ON CONFLICT (id) "
        "DO UPDATE SET entries = audit_head.entries + 1, hash = excluded.hash",
        (digest,),
    )


def audit_head() -> tuple[int, str]:
    """(entries written, the newest one's hash); (0, '') before the first."""
    rows = query_all("SELECT entries, hash FROM audit_head WHERE id = 1")
    return (int(rows[0][0]), str(rows[0][1])) if rows else (0, "")


def audit_rows(since: str = "", limit: int | None = None) -> list[Row]:
    """Entries created at or after `since` (ISO text; '' for all), oldest first; with `limit`,
    the newest `limit` of them."""
    sql = f"SELECT {AUDIT_COLUMNS} FROM audit_log WHERE created_at >= ?"
    if limit is None:
        return query_all(sql + " ORDER BY id", (since,))
    rows = query_all(sql + " ORDER BY id DESC LIMIT ?", (since, limit))
    return rows[::-1]


AUDIT_PAGE = 1000  # entries a read: a page of a long log's, whatever its length


def audit_pages(
    since: str = "", upto: int | None = None, page: int = AUDIT_PAGE, columns: str = AUDIT_COLUMNS
) -> Iterator[list[Row]]:
    """The entries created at or after `since` (ISO text; '' for all) and with an id up to
    `upto` (None: to the newest), in id order (the chain's), a page of `page` at a time, each
    row the values of `columns` (the id first). Pages are separate reads: a caller that needs
    them at one instant holds one (doctor) or takes `pages_at_one_instant` (db/snapshot.py)."""
    sql = f"SELECT {columns} FROM audit_log WHERE id > ? AND created_at >= ?"
    sql += (" AND id <= ?" if upto is not None else "") + " ORDER BY id LIMIT ?"
    return id_pages(sql, [since, *([upto] if upto is not None else [])], page)


def audit_entry_holds(command: str, target: str, text: str) -> bool:
    """Whether an entry of `command` on `target` holds `text` in its after state."""
    row = query_one(
        "SELECT 1 FROM audit_log WHERE command = ? AND target = ? AND after_state LIKE ?",
        (command, target, f"%{text}%"),
    )
    return row is not None


def bump_refusal(tx: Tx, hour: str, status: int, code: str, count: int) -> None:
    """Add `count` refused requests to their hour's counter."""
    tx.execute(
        "INSERT INTO refusal_count (hour, status, code, count) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (hour, status, code) DO UPDATE SET count = refusal_count.count + ?",
        (hour, status, code, count, count),
    )


def refusal_rows(since_hour: str) -> list[Row]:
    """(status, code, count) summed over the hours from `since_hour` on, most first."""
    return query_all(
        "SELECT status, code, SUM(count) FROM refusal_count WHERE hour >= ? "
        "GROUP BY status, code ORDER BY SUM(count) DESC, status, code",
        (since_hour,),
    )


def set_upstream_error(tx: Tx, request_id: str, text: str) -> None:
    """Keep the upstream's (masked, bounded) error message on a request's usage row. An
    upstream quotes what the client sent, a NUL too, which PostgreSQL takes in no text field:
    its write failed and the whole settlement with it (a 500, the hold left open). A NUL is
    kept as `\\x00`, as the log writes it, on both engines; half a UTF-16 surrogate pair (an
    upstream's `"\\ud800"` escape) as `\\ud800`: it failed the settlement the same way."""
    tx.execute(
        "UPDATE usage_record SET upstream_error = ? WHERE request_id = ?",
        (storable_text(text), request_id),
    )


def open_alerts() -> list[tuple[str, str, str]]:
    """Every open alert: (kind, subject, sent_at as stored text)."""
    return [
        (str(kind), str(subject), str(sent_at))
        for kind, subject, sent_at in query_all("SELECT kind, subject, sent_at FROM open_alert")
    ]


def clear_open_alerts() -> None:
    """No alert open any more (alerts are off: none can be followed by its recovery); no
    write when there is none (a box that never had alerts writes nothing)."""
    if not query_all("SELECT 1 FROM open_alert LIMIT 1"):
        return
    with write_transaction() as tx:
        tx.execute("DELETE FROM open_alert")


def keep_open_alerts(changes: list[tuple[str, str, str | None]]) -> None:
    """In one transaction: each (kind, subject, sent_at) kept as open, sent at `sent_at`
    (stored text), or, with None, no longer open (its recovery was said, or it is old enough
    to be sent again)."""
    with write_transaction() as tx:
        for kind, subject, sent_at in changes:
            if sent_at is None:
                tx.execute("DELETE FROM open_alert WHERE kind = ? AND subject = ?", (kind, subject))
            else:
                tx.execute(
                    "INSERT INTO open_alert (kind, subject, sent_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (kind, subject) DO UPDATE SET sent_at = excluded.sent_at",
                    (kind, subject, sent_at),
                )
