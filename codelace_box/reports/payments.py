"""Read-only money reports for the operator: revenue and the payment history of everyone.

Nothing here writes. Revenue is what customers paid: completed top-ups less their Stripe
refunds and disputes (trials and admin adjustments move balances but bring no money in).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from codelace_box.db.core import aggregate, db_time, parse_time, query_all
from codelace_box.reports.traffic import MAX_ROWS, search_terms, term_clause


@dataclass(frozen=True)
class PaymentRow:
    """One payment (top-up, trial or admin adjustment) with the email of its user."""

    id: int
    email: str
    amount_nanos: int
    kind: str
    status: str
    currency: str
    created_at: datetime
    completed_at: datetime | None
    user_id: int
    refunded_nanos: int = 0  # taken back by Stripe refunds and disputes


def revenue_nanos(since: datetime | None = None) -> int:
    """The sum of completed top-ups (completed since a moment, or ever), less what Stripe
    refunds and disputes took back of them."""
    sql = (
        "SELECT COALESCE(SUM(amount_nanos - refunded_nanos), 0) FROM payment "
        "WHERE kind = 'topup' AND status = 'completed'"
    )
    params: tuple[Any, ...] = ()
    if since is not None:
        sql += " AND COALESCE(completed_at, created_at) >= ?"
        params = (db_time(since),)
    return int(aggregate(sql, params)[0])


def pending_payments() -> int:
    """How many checkouts are started but not yet paid, failed or expired."""
    row = aggregate("SELECT COUNT(*) FROM payment WHERE status = 'pending'")
    return int(row[0])


_PAYMENTS_SQL = """
SELECT p.id, u.email, p.amount_nanos, p.kind, p.status, p.currency, p.created_at, p.completed_at,
       p.user_id, p.refunded_nanos
FROM payment p JOIN "user" u ON u.id = p.user_id
WHERE 1 = 1
"""


def list_payments(
    limit: int = 200, search: str = "", user_id: int | None = None
) -> list[PaymentRow]:
    """Payments newest first, optionally one user's, filtered by email, kind or status text."""
    where, params = term_clause(("u.email", "u.uuid", "p.kind", "p.status"), search_terms(search))
    sql = _PAYMENTS_SQL + where
    args: list[Any] = list(params)
    if user_id is not None:
        sql += " AND p.user_id = ?"
        args.append(user_id)
    sql += " ORDER BY p.created_at DESC, p.id DESC LIMIT ?"
    args.append(max(1, min(limit, MAX_ROWS)))
    return [
        PaymentRow(
            id=int(row[0]),
            email=row[1],
            amount_nanos=int(row[2]),
            kind=row[3],
            status=row[4],
            currency=row[5],
            created_at=parse_time(row[6]),
            completed_at=parse_time(row[7]) if row[7] is not None else None,
            user_id=int(row[8]),
            refunded_nanos=int(row[9]),
        )
        for row in query_all(sql, args)
    ]
