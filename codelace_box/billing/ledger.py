"""The append-only ledger: the only way a balance changes, exactly once per idempotency key.

`users.balance_nanos` is a cached sum of the user's entries, updated in the same transaction as
each entry; `find_mismatches()` (the `doctor` command) proves the two agree, and that
`users.held_nanos` equals the user's open holds.
"""

from __future__ import annotations

from dataclasses import dataclass

from codelace_box.db.core import database, write_transaction
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
    existing = LedgerEntry.get_or_none(LedgerEntry.idempotency_key == idempotency_key)
    if existing is not None:
        return Posting(existing, False)
    query = User.update(balance_nanos=User.balance_nanos + amount_nanos).where(User.id == user_id)
    if not allow_negative and amount_nanos < 0:  # nor below what requests in flight reserved
        query = query.where(User.balance_nanos - User.held_nanos + amount_nanos >= 0)
    if query.execute() != 1:
        if User.get_or_none(User.id == user_id) is None:
            raise NotFound(f"no user with id {user_id}", code="user_not_found")
        raise InvalidRequest(
            "that would leave the balance below zero (or below what requests in flight reserved)",
            code="negative_balance",
        )
    entry = LedgerEntry.create(
        user=user_id,
        amount_nanos=amount_nanos,
        kind=kind,
        reason=reason.strip(),
        idempotency_key=idempotency_key,
    )
    return Posting(entry, True)


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
    row = database.execute_sql(
        "SELECT COALESCE(SUM(amount_nanos), 0) FROM ledger_entry WHERE user_id = ?", (user_id,)
    ).fetchone()
    return int(row[0])


def entries_for(user_id: int, limit: int = 100) -> list[LedgerEntry]:
    """The user's newest entries first."""
    query = LedgerEntry.select().where(LedgerEntry.user == user_id)
    return list(query.order_by(LedgerEntry.id.desc()).limit(limit))


_MISMATCH_SQL = """
SELECT u.uuid, u.email, u.balance_nanos, COALESCE(l.total, 0), u.held_nanos, COALESCE(h.total, 0)
FROM user u
LEFT JOIN (SELECT user_id, SUM(amount_nanos) AS total FROM ledger_entry GROUP BY user_id) l
       ON l.user_id = u.id
LEFT JOIN (SELECT user_id, SUM(amount_nanos) AS total FROM hold GROUP BY user_id) h
       ON h.user_id = u.id
WHERE u.balance_nanos != COALESCE(l.total, 0) OR u.held_nanos != COALESCE(h.total, 0)
ORDER BY u.id
"""


def find_mismatches() -> list[Mismatch]:
    """Every account whose balance differs from its ledger, or whose holds do not add up."""
    rows = database.execute_sql(_MISMATCH_SQL).fetchall()
    return [Mismatch(str(r[0]), r[1], int(r[2]), int(r[3]), int(r[4]), int(r[5])) for r in rows]
