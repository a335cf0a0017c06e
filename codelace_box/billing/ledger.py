"""The append-only ledger: the only way a balance changes, exactly once per idempotency key.

`users.balance_nanos` is a cached sum of the user's entries, moved in the same transaction as
each entry is written: `append_entry_in` is the one writer of both, used by `append_entry`
(credits, top-ups, trials) and by a request's settlement (gateway/metering.py), whose hot path
it serves without peewee's query building. `find_mismatches()` (the `doctor` command) proves
the two agree, and that `users.held_nanos` equals the user's open holds.
"""

from __future__ import annotations

from dataclasses import dataclass

from codelace_box.db import hotpath
from codelace_box.db.core import (
    Tx,
    connection,
    exclusive,
    query_all,
    query_one,
    utcnow,
    write_transaction,
)
from codelace_box.db.models import LedgerEntry, User
from codelace_box.errors import InvalidRequest, NotFound

ENTRY_KINDS = ("topup", "trial", "admin", "usage", "refund")


@dataclass(frozen=True)
class Posting:
    entry: LedgerEntry
    created: bool  # False: the idempotency key was already used, nothing changed


@dataclass(frozen=True)
class Mismatch:
    user_uuid: str  # the account's public id
    email: str
    balance_nanos: int
    ledger_nanos: int
    held_nanos: int
    holds_nanos: int


def append_entry_in(
    tx: Tx,
    user_id: int,
    amount_nanos: int,
    kind: str,
    reason: str,
    idempotency_key: str,
    created_at: str,
    *,
    released: int = 0,
    allow_negative: bool = True,
    locked: bool = False,
) -> bool:
    """Inside an open transaction: move the balance by `amount_nanos` (lowering what the user
    holds by `released`, a settled hold) and write the entry. False: nothing written, the user
    is gone or (`allow_negative` False) the balance would drop below the open holds.
    `locked`: the caller read the user's row locked in this transaction, so an unguarded move
    cannot miss it and its count is not waited for (PostgreSQL: no round trip of its own).
    The caller checks the kind, the reason and the idempotency key first."""
    guarded = not allow_negative and amount_nanos < 0  # nor below what requests reserved
    moved = hotpath.move_balance(tx, user_id, amount_nanos, released, guarded=guarded)
    if (guarded or not locked) and not moved():
        return False
    hotpath.insert_ledger_entry(
        tx, user_id, amount_nanos, kind, reason, idempotency_key, created_at
    )
    return True


def append_entry(
    user_id: int,
    amount_nanos: int,
    kind: str,
    reason: str,
    idempotency_key: str,
    *,
    allow_negative: bool = True,
) -> Posting:
    """Add an entry and move the balance; call inside a write transaction."""
    if kind not in ENTRY_KINDS:
        raise InvalidRequest(f"unknown ledger entry kind {kind!r}")
    if not reason.strip():
        raise InvalidRequest("a ledger entry needs a reason")
    exclusive(connection(), f"ledger:{idempotency_key}")  # racing boxes: the first one posts
    existing = LedgerEntry.get_or_none(LedgerEntry.idempotency_key == idempotency_key)
    if existing is not None:
        return Posting(existing, False)
    written = append_entry_in(
        connection(),
        user_id,
        amount_nanos,
        kind,
        reason.strip(),
        idempotency_key,
        str(utcnow()),
        allow_negative=allow_negative,
    )
    if not written:
        if User.get_or_none(User.id == user_id) is None:
            raise NotFound("the account does not exist", code="user_not_found")
        raise InvalidRequest(
            "that would leave the balance below zero (or below what requests in flight reserved)",
            code="negative_balance",
        )
    return Posting(LedgerEntry.get(LedgerEntry.idempotency_key == idempotency_key), True)


def post_entry(
    user_id: int,
    amount_nanos: int,
    kind: str,
    reason: str,
    idempotency_key: str,
    *,
    allow_negative: bool = True,
) -> Posting:
    """`append_entry` in its own IMMEDIATE transaction."""
    with write_transaction():
        return append_entry(
            user_id, amount_nanos, kind, reason, idempotency_key, allow_negative=allow_negative
        )


def ledger_sum(user_id: int) -> int:
    """The balance as the ledger says it is."""
    row = query_one(
        "SELECT COALESCE(SUM(amount_nanos), 0) FROM ledger_entry WHERE user_id = ?", (user_id,)
    )
    return int(row[0]) if row else 0


def entries_for(user_id: int, limit: int = 100) -> list[LedgerEntry]:
    """The user's newest entries first."""
    query = LedgerEntry.select().where(LedgerEntry.user == user_id)
    return list(query.order_by(LedgerEntry.id.desc()).limit(limit))


_MISMATCH_SQL = """
SELECT u.uuid, u.email, u.balance_nanos, COALESCE(l.total, 0), u.held_nanos, COALESCE(h.total, 0)
FROM "user" u
LEFT JOIN (SELECT user_id, SUM(amount_nanos) AS total FROM ledger_entry GROUP BY user_id) l
       ON l.user_id = u.id
LEFT JOIN (SELECT user_id, SUM(amount_nanos) AS total FROM hold GROUP BY user_id) h
       ON h.user_id = u.id
WHERE u.balance_nanos != COALESCE(l.total, 0) OR u.held_nanos != COALESCE(h.total, 0)
ORDER BY u.id
"""


def find_mismatches() -> list[Mismatch]:
    """Every account whose balance differs from its ledger, or whose holds do not add up."""
    rows = query_all(_MISMATCH_SQL)
    return [Mismatch(str(r[0]), r[1], int(r[2]), int(r[3]), int(r[4]), int(r[5])) for r in rows]
