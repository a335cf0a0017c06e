"""The key lookup's rows (what its caller made of them), kept per SQLite connection while
provably current (PostgreSQL: none).

A kept row is used only while nothing that could change it was committed since it was read:
- by another connection (another worker, the CLI, the dashboard, another thread): SQLite's
  `PRAGMA data_version` changes when any other connection commits, and it is read in a read
  transaction of its own at every lookup, so that commit is seen as the full lookup would;
- by this connection (a key revoked or PATCHed, an account disabled, through this worker's API):
  TEMP triggers on this connection, after any INSERT or DELETE on `api_key` and `"user"` and
  any UPDATE naming a column the lookup reads, call a function that counts the change (a
  change rolled back counts too). The request path's own writes (holds, spend, balances) name
  none of those columns, so they keep the rows.
A changed count or version drops every kept row. A lookup inside an open transaction (whose
rows could still be rolled back) reads through and keeps nothing; unknown keys are never kept.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import apsw

from codelace_box.db.core import Statements, statements
from codelace_box.db.hotpath import key_owner

_CHANGED = "codelace_key_rows_changed"
# The columns of the lookup's SELECT (db/hotpath.py `_KEY_OWNER_COLUMNS`), and what joins them
# (tests/accounts/test_key_rows.py fails on a column read there and not watched here)
_KEY_COLUMNS = (
    "id, user_id, key_hash, last_used_at, revoked_at, expires_at, allowed_models, limit_nanos, "
    "limit_reset, can_manage_keys"
)
_USER_COLUMNS = "id, uuid, email, status, rpm, max_concurrent"
_TRIGGERS = tuple(
    f"CREATE TEMP TRIGGER IF NOT EXISTS codelace_keycache_{name} AFTER {event} ON "
    f"main.{table} BEGIN SELECT {_CHANGED}(); END"
    for name, event, table in (
        ("key_insert", "INSERT", "api_key"),
        ("key_delete", "DELETE", "api_key"),
        ("key_update", f"UPDATE OF {_KEY_COLUMNS}", "api_key"),
        ("user_insert", "INSERT", '"user"'),
        ("user_delete", "DELETE", '"user"'),
        ("user_update", f"UPDATE OF {_USER_COLUMNS}", '"user"'),
    )
)
_VERSION_SQL = "PRAGMA data_version"
# A window of WINDOW lookups of which more than three in four missed: the next SKIPPED
# lookups read through (as on PostgreSQL), a miss costing the version's read on top.
WINDOW, SKIPPED = 64, 1024
MAX_KEPT = 10_000  # rows kept at most (a busy box's active keys); past it, all are dropped


class KeyRows:
    """The rows kept for one connection, with the version and change count they were read at."""

    __slots__ = ("changes", "connection", "looked", "missed", "read_at", "rows", "skip")

    def __init__(self, conn: Any) -> None:
        self.connection = conn
        self.changes = 0  # this connection's changes to the looked-up columns
        self.read_at: tuple[Any, int] | None = None  # (data_version, changes) of the rows
        self.rows: dict[str, Any] = {}  # what the lookups made of each row, by key hash
        self.looked = self.missed = 0  # lookups and misses of the current window
        self.skip = 0  # lookups left to read through, after a window of mostly misses
        conn.create_scalar_function(_CHANGED, self.changed, 0)
        for trigger in _TRIGGERS:
            conn.execute(trigger)

    def changed(self) -> None:
        """The triggers' function: a looked-up row was (or is being) written here."""
        self.changes += 1


_kept: list[KeyRows | None] = [None]
T = TypeVar("T")


def current_key_owner(key_hash: str, make: Callable[[str, tuple[Any, ...]], T | None]) -> T | None:
    """`make(key_hash, row)` of `hotpath.key_owner`'s row as of now (None: no such key). On
    SQLite what `make` gave is kept with the row while the row is current (see the module's
    docstring): `make` must depend on the row alone, and its value is shared by the lookups."""
    tx = statements()
    if not isinstance(tx, Statements) or not tx.getautocommit():  # PostgreSQL; a transaction
        return _made(key_hash, key_owner(tx, key_hash), make)
    kept = _rows_of(tx)
    if kept is None or kept.skip:
        if kept is not None:
            kept.skip -= 1
        return _made(key_hash, key_owner(tx, key_hash), make)
    read_at = (tx.execute(_VERSION_SQL).fetchall()[0][0], kept.changes)
    kept.looked += 1
    if kept.read_at != read_at:
        kept.rows.clear()
        kept.read_at = read_at
    else:
        found = kept.rows.get(key_hash)
        if found is not None:
            return found
    kept.missed += 1
    if kept.looked >= WINDOW:
        _window_ended(kept)
    found = _made(key_hash, key_owner(tx, key_hash), make)
    if found is not None:
        if len(kept.rows) >= MAX_KEPT:
            kept.rows.clear()
        kept.rows[key_hash] = found
    return found


def _window_ended(kept: KeyRows) -> None:
    """Past a window of mostly misses (several workers on one file: each other's commits
    change data_version), the next lookups read through without the version's read."""
    if kept.missed * 4 > kept.looked * 3:
        kept.skip = SKIPPED
        kept.read_at = None
    kept.looked = kept.missed = 0


def _made(
    key_hash: str, row: tuple[Any, ...] | None, make: Callable[[str, tuple[Any, ...]], T | None]
) -> T | None:
    return None if row is None else make(key_hash, row)


def _rows_of(tx: Statements) -> KeyRows | None:
    """The kept rows of the connection behind `tx` (new, with its triggers, for a new one);
    None where the triggers cannot be made (then nothing is kept)."""
    conn = tx.connection
    kept = _kept[0]
    if kept is None or kept.connection is not conn:
        _kept[0] = None
        try:
            kept = KeyRows(conn)
        except apsw.Error:
            return None
        _kept[0] = kept
    return kept
