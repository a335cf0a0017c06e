"""The hand-written statements of the request path: the key lookup, holds, the usage row, a
ledger row.

Admission and settlement run these on the connection (`Tx`) rather than through peewee, whose
query building cost more than SQLite itself; apsw caches each prepared statement by its text,
so each is compiled once (psycopg prepares them on PostgreSQL). The text is written with `?`
parameters and keeps to what both engines read (`RETURNING`, the quoted "user" table); where
they must differ the statement is chosen by engine here: on PostgreSQL (READ COMMITTED, many
boxes) the settlement reads the account `FOR UPDATE`, so a concurrent settlement of the same
user waits instead of charging against a balance that is no longer there (SQLite's
BEGIN IMMEDIATE already serialises every writer). The rules (how much to reserve or charge,
when) live in the features: `accounts/keys.py`, `gateway/metering.py` and
`billing/ledger.py`, the only callers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from codelace_box.db.core import POSTGRES, Tx, engine

_KEY_OWNER_SQL = (
    "SELECT k.id, k.key_hash, k.last_used_at, u.id, u.email, u.status FROM api_key k "
    'JOIN "user" u ON u.id = k.user_id WHERE k.key_hash = ? AND k.revoked_at IS NULL'
)
_RESERVE_SQL = (
    'UPDATE "user" SET held_nanos = held_nanos + ? WHERE id = ? AND balance_nanos - held_nanos >= ?'
)
_HOLD_SQL = (
    "INSERT INTO hold (user_id, amount_nanos, request_id, created_at, owner) VALUES (?, ?, ?, ?, ?)"
)
_TAKE_HOLD_SQL = "DELETE FROM hold WHERE request_id = ? RETURNING amount_nanos"
_ACCOUNT_SQL = 'SELECT balance_nanos, held_nanos FROM "user" WHERE id = ?'
_ACCOUNT_LOCKED_SQL = _ACCOUNT_SQL + " FOR UPDATE"  # PostgreSQL: the row stays ours to commit
_LOWER_HELD_SQL = 'UPDATE "user" SET held_nanos = held_nanos - ? WHERE id = ?'
_RECOUNT_HELD_SQL = (
    'UPDATE "user" SET held_nanos = (SELECT COALESCE(SUM(amount_nanos), 0) FROM hold '
    'WHERE hold.user_id = "user".id) WHERE held_nanos != (SELECT COALESCE(SUM(amount_nanos), 0) '
    'FROM hold WHERE hold.user_id = "user".id)'
)
_USAGE_SQL = (
    "INSERT INTO usage_record (request_id, user_id, api_key_id, model, provider, upstream_model,"
    " input_tokens, output_tokens, input_per_1m_nanos, output_per_1m_nanos, cost_nanos, hold_nanos,"
    " status, error_code, stream, estimated, duration_ms, created_at, route, cache_read_tokens,"
    " cache_write_tokens, cache_write_1h_tokens, cache_read_per_1m_nanos,"
    " cache_write_per_1m_nanos, cache_write_1h_per_1m_nanos)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_MOVE_BALANCE_SQL = (
    'UPDATE "user" SET balance_nanos = balance_nanos + ?, held_nanos = held_nanos - ? WHERE id = ?'
)
_MOVE_BALANCE_GUARDED_SQL = _MOVE_BALANCE_SQL + " AND balance_nanos - held_nanos + ? >= 0"
_ENTRY_SQL = (
    "INSERT INTO ledger_entry (user_id, amount_nanos, kind, reason, idempotency_key, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)


def key_owner(tx: Tx, key_hash: str) -> tuple[Any, ...] | None:
    """The active key with this hash and its user: (key id, key_hash, last_used_at, user id,
    email, status), or None."""
    row: tuple[Any, ...] | None = tx.execute(_KEY_OWNER_SQL, (key_hash,)).fetchone()
    return row


def reserve(tx: Tx, user_id: int, amount_nanos: int) -> bool:
    """Add to what the user holds if the balance covers it besides the open holds."""
    tx.execute(_RESERVE_SQL, (amount_nanos, user_id, amount_nanos))
    return tx.changes() == 1


def insert_hold(
    tx: Tx, user_id: int, amount_nanos: int, request_id: str, created_at: str, owner: str
) -> None:
    """The row that records a reservation (and gates its settlement)."""
    tx.execute(_HOLD_SQL, (user_id, amount_nanos, request_id, created_at, owner))


def take_hold(tx: Tx, request_id: str) -> int | None:
    """Delete the request's hold; its amount, or None when there was none (settled already)."""
    rows = tx.execute(_TAKE_HOLD_SQL, (request_id,)).fetchall()
    return int(rows[0][0]) if rows else None


def account(tx: Tx, user_id: int) -> tuple[int, int]:
    """(balance_nanos, held_nanos) of a user, the row locked until the transaction ends (what
    the settlement then writes is computed from it)."""
    sql = _ACCOUNT_LOCKED_SQL if engine() == POSTGRES else _ACCOUNT_SQL
    row = tx.execute(sql, (user_id,)).fetchone()
    return int(row[0]), int(row[1])


def lower_held(tx: Tx, user_id: int, amount_nanos: int) -> None:
    """Lower what the user holds (a hold released without a charge)."""
    tx.execute(_LOWER_HELD_SQL, (amount_nanos, user_id))


def hold_owners(tx: Tx) -> list[str]:
    """Every process that holds something."""
    return [row[0] for row in tx.execute("SELECT DISTINCT owner FROM hold")]


def holds_of_owner_before(tx: Tx, owner: str, cutoff: str) -> list[str]:
    """The request ids of an owner's holds taken before `cutoff`."""
    query = "SELECT request_id FROM hold WHERE owner = ? AND created_at < ?"
    return [row[0] for row in tx.execute(query, (owner, cutoff))]


def delete_holds_before(tx: Tx, cutoff: str) -> int:
    """Delete the holds taken before `cutoff`; how many."""
    tx.execute("DELETE FROM hold WHERE created_at < ?", (cutoff,))
    return tx.changes()


def delete_holds_of_owner(tx: Tx, owner: str) -> int:
    """Delete an owner's holds; how many."""
    tx.execute("DELETE FROM hold WHERE owner = ?", (owner,))
    return tx.changes()


def delete_hold_of_request(tx: Tx, request_id: str) -> int:
    """Delete a request's hold; how many (0 or 1)."""
    tx.execute("DELETE FROM hold WHERE request_id = ?", (request_id,))
    return tx.changes()


def recount_held(tx: Tx) -> None:
    """Set every user's held_nanos to the sum of their holds where it differs."""
    tx.execute(_RECOUNT_HELD_SQL)


def insert_usage(tx: Tx, values: Sequence[Any]) -> None:
    """The usage row, its 18 columns in the order of `_USAGE_SQL`."""
    tx.execute(_USAGE_SQL, values)


def move_balance(
    tx: Tx, user_id: int, amount_nanos: int, released_nanos: int = 0, *, guarded: bool = False
) -> bool:
    """Add `amount_nanos` (signed) to the balance and lower held_nanos by `released_nanos`;
    `guarded`: only if the balance stays at or above the open holds. False: nothing changed."""
    if guarded:
        params: tuple[int, ...] = (amount_nanos, released_nanos, user_id, amount_nanos)
        tx.execute(_MOVE_BALANCE_GUARDED_SQL, params)
    else:
        tx.execute(_MOVE_BALANCE_SQL, (amount_nanos, released_nanos, user_id))
    return tx.changes() == 1


def insert_ledger_entry(
    tx: Tx,
    user_id: int,
    amount_nanos: int,
    kind: str,
    reason: str,
    idempotency_key: str,
    created_at: str,
) -> None:
    """The ledger row (no RETURNING: it would double the statement's cost here)."""
    tx.execute(_ENTRY_SQL, (user_id, amount_nanos, kind, reason, idempotency_key, created_at))
