"""The hand-written statements of the request path: the key lookup (one, or on PostgreSQL's
lookup thread a batch of them), holds, a key's cap and period, the account limits' counts, the
ledger row (the usage row: db/usage_rows.py; the running totals and rollups: db/totals.py).

Admission and settlement run these on the connection (`Tx`), not through peewee, whose query
building cost more than SQLite itself; each is prepared once (apsw caches by text, psycopg
prepares); on SQLite they run through one kept cursor (`core.statements()`), so every read here
reads its rows to their end. The text uses `?` and what both engines read (`RETURNING`, the
quoted "user" table); where they differ the statement is chosen by engine: on PostgreSQL (READ
COMMITTED, many boxes) settlement and the account limits lock the user `FOR UPDATE`
(`core.lock_rows()`), so a concurrent writer of the user waits instead of acting on a stale
balance or count (SQLite's BEGIN IMMEDIATE serialises every writer). The rules live in the
callers: `accounts/keys.py`, `accounts/limits.py`, `gateway/metering.py`, `billing/ledger.py`.
A key's row is written by its requests only when the key has a budget (a cap or a reset),
decided inside each statement that depends on it, never from an earlier read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from codelace_box.db.core import LOCK_ROWS, POSTGRES, SQLITE, Tx, engine, exclusive

T = TypeVar("T")
# What a statement gave, read when called. On PostgreSQL in a batch (pipelined) the statement
# is sent at once and its answer waited for only then, so statements sent one after another
# before any is read share one round trip (admission: the hold and the reservation;
# settlement: the hold taken and the account read). On SQLite a count is the connection's
# last, so it is taken at once, and a read runs when called: no wait to save there.
Later = Callable[[], T]

# A key with a budget (a spend cap or a reset period): its row counts its holds and its spend.
# A key without one is left alone by its requests (what it spent is its key_usage total then:
# accounts/limits.py): the common case pays no statement on the key's row.
_BUDGETED = "(limit_nanos IS NOT NULL OR limit_reset IS NOT NULL)"
_KEY_OWNER_COLUMNS = (
    "SELECT k.id, k.key_hash, k.last_used_at, u.id, u.email, u.status, k.expires_at, "
    "k.allowed_models, u.rpm, u.max_concurrent, "
    "k.limit_nanos IS NOT NULL OR k.limit_reset IS NOT NULL, u.uuid, k.can_manage_keys "
    "FROM api_key k "
    'JOIN "user" u ON u.id = k.user_id WHERE k.revoked_at IS NULL AND k.key_hash = '
)
# SQLite: `+?`, because with a plain `?` its planner reads the bound value in this join, so each
# new binding expired the prepared statement and it was compiled again on every request (about
# 80,000 instructions, a third of the lookup); the plan stays the same (the key_hash index, then
# the user). PostgreSQL prepares it once either way (and reads `+?` as a number).
_KEY_OWNER_SQL = {SQLITE: _KEY_OWNER_COLUMNS + "+?", POSTGRES: _KEY_OWNER_COLUMNS + "?"}
# A key's use, noted at most once a minute by its lookup, is never waited for: on PostgreSQL a
# row another transaction holds (a batch admitting on a capped key, on any box) is skipped and
# the note made at a later request. The lookups of a box run one at a time on its lookup
# thread: a wait there was every request's (SQLite's one writer waits as every write does).
_KEY_USED = "UPDATE api_key SET last_used_at = ? WHERE id = "
_KEY_USED_SQL = {
    SQLITE: _KEY_USED + "?",
    POSTGRES: _KEY_USED + "(SELECT id FROM api_key WHERE id = ? FOR NO KEY UPDATE SKIP LOCKED)",
}
# A key's period, rolled over lazily inside the statement that reserves or settles on it: the
# start of its current period by its reset (daily, weekly, monthly: three parameters), and
# whether its stored period is over (a key without reset keeps its one period).
_PERIOD = (
    "CASE limit_reset WHEN 'daily' THEN ? WHEN 'weekly' THEN ? WHEN 'monthly' THEN ? "
    "ELSE period_start END"
)
_OVER = f"(limit_reset IS NOT NULL AND (period_start IS NULL OR period_start < {_PERIOD}))"
_SPENT = f"CASE WHEN {_OVER} THEN 0 ELSE spent_nanos END"  # what the key spent this period
_ROLLED = f"period_start = CASE WHEN {_OVER} THEN {_PERIOD} ELSE period_start END"
# Every SET and WHERE expression reads the row as it was before the UPDATE.
_RESERVE_KEY_SQL = (
    f"UPDATE api_key SET held_nanos = held_nanos + ?, spent_nanos = {_SPENT}, {_ROLLED} "
    f"WHERE id = ? AND {_BUDGETED} AND (limit_nanos IS NULL OR limit_nanos - {_SPENT} - "
    "held_nanos >= ?)"
)
_LEFT = f"limit_nanos - {_SPENT} - held_nanos"  # of its cap this period (NULL: no cap)
_KEY_BUDGETED_SQL = (
    f"SELECT limit_reset, {_LEFT}, limit_nanos FROM api_key WHERE id = ? AND {_BUDGETED}"
)
_SETTLE_KEY_SQL = (
    f"UPDATE api_key SET held_nanos = held_nanos - ?, spent_nanos = {_SPENT} + ?, {_ROLLED} "
    "WHERE id = ?"
)
# The recounts scan hold (the requests in flight) once per row that can differ: a row that
# holds something or one with open holds (hold has no index by key).
_KEY_HOLDS = (
    "(SELECT COALESCE(SUM(amount_nanos), 0) FROM hold WHERE hold.api_key_id = api_key.id "
    "AND hold.key_held = 1)"
)
_RECOUNT_KEY_HELD_SQL = (
    f"UPDATE api_key SET held_nanos = {_KEY_HOLDS} WHERE (held_nanos != 0 OR id IN (SELECT "
    f"api_key_id FROM hold WHERE key_held = 1)) AND held_nanos != {_KEY_HOLDS}"
)
# A budget set on a key: its open holds are counted on its row from now on.
_HOLDS_TO_KEY_SQL = "UPDATE hold SET key_held = 1 WHERE api_key_id = ? AND key_held = 0"
_KEY_HELD_SUM_SQL = "SELECT COALESCE(SUM(amount_nanos), 0) FROM hold WHERE api_key_id = ?"
_KEY_COST_SQL = "SELECT COALESCE(SUM(cost_nanos), 0) FROM key_usage WHERE api_key_id = ?"
_LOCK_USER_SQL = {
    name: 'SELECT id FROM "user" WHERE id = ?' + lock for name, lock in LOCK_ROWS.items()
}
_OPEN_HOLDS_SQL = "SELECT COUNT(*) FROM hold WHERE user_id = ?"
_EVENTS_PRUNE_SQL = "DELETE FROM rate_event WHERE bucket = ? AND created_at <= ?"
_IN_WINDOW = "FROM rate_event WHERE bucket = ? AND created_at > ? AND created_at <= ?"
_EVENTS_COUNT_SQL = f"SELECT COUNT(*) {_IN_WINDOW}"
_EVENT_AT_SQL = f"SELECT created_at {_IN_WINDOW} ORDER BY created_at LIMIT 1 OFFSET ?"
_EVENT_SQL = "INSERT INTO rate_event (bucket, created_at) VALUES (?, ?)"
_RESERVE_SQL = (
    'UPDATE "user" SET held_nanos = held_nanos + ? WHERE id = ? AND balance_nanos - held_nanos >= ?'
)
_HOLD_COLUMNS = "hold (user_id, amount_nanos, request_id, created_at, owner, api_key_id, key_held)"
_HOLD_SQL = f"INSERT INTO {_HOLD_COLUMNS} VALUES (?, ?, ?, ?, ?, ?, ?)"
# The hold of a request whose key has no budget, written only if the key has none now (in
# this transaction): the key's row is not read by anything else on this path.
_HOLD_UNBUDGETED_SQL = (
    f"INSERT INTO {_HOLD_COLUMNS} SELECT ?, ?, ?, ?, ?, ?, 0 WHERE NOT EXISTS "
    f"(SELECT 1 FROM api_key WHERE id = ? AND {_BUDGETED})"
)
_TAKE_HOLD = "DELETE FROM hold WHERE request_id = ? RETURNING amount_nanos, api_key_id, key_held"
_ACCOUNT_SQL = 'SELECT balance_nanos, held_nanos FROM "user" WHERE id = ?'
# PostgreSQL: the row stays ours to commit
_ACCOUNT_LOCKED_SQL = {SQLITE: _ACCOUNT_SQL, POSTGRES: _ACCOUNT_SQL + LOCK_ROWS[POSTGRES]}
_LOWER_HELD_SQL = 'UPDATE "user" SET held_nanos = held_nanos - ? WHERE id = ?'
_USER_HOLDS = '(SELECT COALESCE(SUM(amount_nanos), 0) FROM hold WHERE hold.user_id = "user".id)'
_RECOUNT_HELD_SQL = (
    f'UPDATE "user" SET held_nanos = {_USER_HOLDS} WHERE (held_nanos != 0 OR id IN (SELECT '
    f"user_id FROM hold)) AND held_nanos != {_USER_HOLDS}"
)
_MOVE_BALANCE_SQL = (
    'UPDATE "user" SET balance_nanos = balance_nanos + ?, held_nanos = held_nanos - ? WHERE id = ?'
)
_MOVE_BALANCE_GUARDED_SQL = _MOVE_BALANCE_SQL + " AND balance_nanos - held_nanos + ? >= 0"
_ENTRY_SQL = (
    "INSERT INTO ledger_entry (user_id, amount_nanos, kind, reason, idempotency_key, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)


# PostgreSQL: the lookups of several requests at once (db/lookups.py), one round trip
_KEY_OWNERS_SQL = _KEY_OWNER_COLUMNS + "ANY(?)"


def _one(answer: Any) -> Any:
    """A statement's first row (None: none), its rows read to their end: the Tx may be a
    kept cursor (db/core.py `Statements`)."""
    rows = answer.fetchall()
    return rows[0] if rows else None


def key_owners(tx: Tx, key_hashes: Sequence[str]) -> dict[str, tuple[Any, ...]]:
    """`key_owner` of several hashes at once: each active key found, by its hash (one
    statement on PostgreSQL; one per hash on SQLite, where a lookup is a local read)."""
    if engine() != POSTGRES:
        found = (key_owner(tx, key_hash) for key_hash in key_hashes)
        return {row[1]: row for row in found if row is not None}
    rows = tx.execute(_KEY_OWNERS_SQL, (list(key_hashes),)).fetchall()
    return {row[1]: tuple(row) for row in rows}


def key_owner(tx: Tx, key_hash: str) -> tuple[Any, ...] | None:
    """The active key with this hash and its user: (key id, key_hash, last_used_at, user id,
    email, status, expires_at, allowed_models, rpm, max_concurrent, whether the key has a
    budget, the user's public id, whether the key may manage keys), or None."""
    rows = tx.execute(_KEY_OWNER_SQL[engine()], (key_hash,)).fetchall()  # one at most
    row: tuple[Any, ...] | None = rows[0] if rows else None
    return row


def note_key_used(tx: Tx, key_id: int, when: str) -> None:
    """Set the key's last_used_at to `when` (as stored), unless its row is locked elsewhere."""
    tx.execute(_KEY_USED_SQL[engine()], (when, key_id))


def _one_changed(tx: Tx, answer: Any) -> Later[bool]:
    """Whether the statement just sent changed one row, read when asked (see `Later`)."""
    if engine() == POSTGRES:
        return lambda: bool(answer.rowcount == 1)
    return _CHANGED if tx.changes() == 1 else _UNCHANGED  # (SQLite: no closure a statement)


_CHANGED, _UNCHANGED = True.__bool__, False.__bool__  # (Later[bool]s: C calls, no closures)


def reserve(tx: Tx, user_id: int, amount_nanos: int) -> Later[bool]:
    """Add to what the user holds if the balance covers it besides the open holds; whether it
    did, read when asked."""
    return _one_changed(tx, tx.execute(_RESERVE_SQL, (amount_nanos, user_id, amount_nanos)))


def insert_hold(
    tx: Tx,
    user_id: int,
    amount_nanos: int,
    request_id: str,
    created_at: str,
    owner: str,
    key_id: int | None = None,
    key_held: bool = False,
) -> None:
    """The row that records a reservation (and gates its settlement); `key_held`: counted in
    its key's held_nanos."""
    params = (user_id, amount_nanos, request_id, created_at, owner, key_id, int(key_held))
    tx.execute(_HOLD_SQL, params)


def insert_hold_unbudgeted(
    tx: Tx, user_id: int, amount_nanos: int, request_id: str, created_at: str, owner: str,
    key_id: int,
) -> Later[bool]:  # fmt: skip
    """The hold of a request whose key has no budget, not counted on the key's row; False (and
    nothing written) when the key has a budget now, read when asked."""
    params = (user_id, amount_nanos, request_id, created_at, owner, key_id, key_id)
    return _one_changed(tx, tx.execute(_HOLD_UNBUDGETED_SQL, params))


def take_hold(tx: Tx, request_id: str, user_id: int) -> Later[Taken | None]:
    """Delete the request's hold; (its amount, key id, whether counted on the key's row), or
    None (settled already). On PostgreSQL the account's row is locked with it (read FOR
    UPDATE: the settlement's writes to it then come in the order the holds were taken)."""
    if engine() == POSTGRES:
        answer, account_read = tx.execute(_TAKE_HOLD, (request_id,)), account(tx, user_id)
        return lambda: _taken(answer.fetchall(), account_read)
    rows = tx.execute(_TAKE_HOLD, (request_id,)).fetchall()  # runs as it is read
    if not rows:
        return _NONE
    amount, key_id, key_held = rows[0]
    held = (int(amount), None if key_id is None else int(key_id), bool(key_held))
    return lambda: held


Taken = tuple[int, int | None, bool]  # `take_hold`'s
_NONE: Later[None] = type(None)  # (NoneType() gives None)


def _taken(rows: list[Any], account_read: Later[tuple[int, int]]) -> Taken | None:
    """PostgreSQL's `take_hold` answered (the account's answer read only with a hold)."""
    if not rows:
        return None
    account_read()  # (its row locked: the value is not needed)
    amount, key_id, key_held = rows[0]
    return int(amount), None if key_id is None else int(key_id), bool(key_held)


def reserve_key(tx: Tx, key_id: int, amount_nanos: int, starts: tuple[str, str, str]) -> bool:
    """Add to what a key with a budget holds if its cap (if any) covers it besides what the key
    spent in its current period and holds already; a period that is over starts anew (spent
    0). `starts`: the current period's start for a daily, a weekly and a monthly reset. One
    guarded statement: it holds across processes. False: refused, or the key has no budget
    (`key_budgeted` tells which)."""
    params = (amount_nanos, *starts, *starts, *starts, key_id, *starts, amount_nanos)
    tx.execute(_RESERVE_KEY_SQL, params)
    return tx.changes() == 1


def key_budget(tx: Tx, key_id: int, starts: tuple[str, str, str]) -> tuple[Any, Any, Any] | None:
    """(limit_reset, what is left of its cap, the cap) of a key with a cap or a reset; or None."""
    return _one(tx.execute(_KEY_BUDGETED_SQL, (*starts, key_id)))


def holds_to_key(tx: Tx, key_id: int) -> int:
    """A budget was set on the key: count every open hold of the key on its row from now on;
    what they hold in all (the key's held_nanos)."""
    tx.execute(_HOLDS_TO_KEY_SQL, (key_id,))
    return int(_one(tx.execute(_KEY_HELD_SUM_SQL, (key_id,)))[0])


def key_usage_cost(tx: Tx, key_id: int) -> int:
    """What the key's requests were charged in all (its running total, kept by settlement)."""
    return int(_one(tx.execute(_KEY_COST_SQL, (key_id,)))[0])


def one_writer_with_requests(tx: Tx) -> None:
    """Inside a write transaction: no admission or settlement of any process runs until it
    ends (SQLite: BEGIN IMMEDIATE is that already; PostgreSQL: the group commit's advisory
    lock, which every batch takes first)."""
    if engine() == POSTGRES:
        from codelace_box.db.batch import BATCH_LOCK  # not imported by a SQLite box's CLI

        exclusive(tx, BATCH_LOCK)


def settle_key(
    tx: Tx, key_id: int, released_nanos: int, charged_nanos: int, starts: tuple[str, str, str]
) -> None:
    """Lower what the key holds and count the charge as spent in its current period (a
    period that is over starts anew first)."""
    params = (released_nanos, *starts, charged_nanos, *starts, *starts, key_id)
    tx.execute(_SETTLE_KEY_SQL, params)


def lock_user(tx: Tx, user_id: int) -> None:
    """Lock the user's row until the transaction ends (the account limits count under it)."""
    tx.execute(_LOCK_USER_SQL[engine()], (user_id,)).fetchall()


def open_holds(tx: Tx, user_id: int) -> int:
    """How many requests of the user hold a reservation now."""
    return int(_one(tx.execute(_OPEN_HOLDS_SQL, (user_id,)))[0])


def events_since(tx: Tx, bucket: str, window: tuple[str, str]) -> int:
    """Forget the bucket's events up to the window's start; how many are in it (start, end]."""
    tx.execute(_EVENTS_PRUNE_SQL, (bucket, window[0]))
    return int(_one(tx.execute(_EVENTS_COUNT_SQL, (bucket, *window)))[0])


def event_at(tx: Tx, bucket: str, window: tuple[str, str], offset: int) -> Any:
    """The moment of the bucket's event number `offset` (0: the oldest) in the window."""
    row = _one(tx.execute(_EVENT_AT_SQL, (bucket, *window, offset)))
    return None if row is None else row[0]


def insert_event(tx: Tx, bucket: str, created_at: str) -> None:
    """Count one event in a rate bucket."""
    tx.execute(_EVENT_SQL, (bucket, created_at))


def account(tx: Tx, user_id: int) -> Later[tuple[int, int]]:
    """(balance_nanos, held_nanos) of a user, the row locked until the transaction ends (what
    the settlement then writes is computed from it), read when asked (SQLite: run then)."""
    sql = _ACCOUNT_LOCKED_SQL[engine()]
    if engine() == POSTGRES:
        answer = tx.execute(sql, (user_id,))
        return lambda: _balance_and_held(answer.fetchall()[0])
    return lambda: _balance_and_held(tx.execute(sql, (user_id,)).fetchall()[0])


def _balance_and_held(row: Any) -> tuple[int, int]:
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


def holds_before(tx: Tx, cutoff: str) -> list[str]:
    """The request ids of every hold taken before `cutoff`, whoever took it."""
    return [
        row[0] for row in tx.execute("SELECT request_id FROM hold WHERE created_at < ?", (cutoff,))
    ]


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
    """Set every user's held_nanos to the sum of their holds, every key's to the sum of the
    holds counted on its row, where it differs."""
    tx.execute(_RECOUNT_HELD_SQL)
    tx.execute(_RECOUNT_KEY_HELD_SQL)


def move_balance(
    tx: Tx, user_id: int, amount_nanos: int, released_nanos: int = 0, *, guarded: bool = False
) -> Later[bool]:
    """Add `amount_nanos` (signed) to the balance and lower held_nanos by `released_nanos`;
    `guarded`: only if the balance stays at or above the open holds. False: nothing changed
    (read when asked)."""
    if guarded:
        params: tuple[int, ...] = (amount_nanos, released_nanos, user_id, amount_nanos)
        return _one_changed(tx, tx.execute(_MOVE_BALANCE_GUARDED_SQL, params))
    return _one_changed(tx, tx.execute(_MOVE_BALANCE_SQL, (amount_nanos, released_nanos, user_id)))


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
