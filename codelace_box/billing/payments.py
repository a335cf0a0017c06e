"""Payment history: top-ups, trials and admin adjustments of an account, as the API shows them."""

from __future__ import annotations

from typing import Any

from codelace_box.db.core import iso_z
from codelace_box.db.models import Payment
from codelace_box.money import usd_json

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def list_payments(user_id: int, limit: int = DEFAULT_LIMIT) -> list[Payment]:
    """The account's payments, newest first."""
    query = Payment.select().where(Payment.user == user_id)
    return list(query.order_by(Payment.created_at.desc(), Payment.id.desc()).limit(limit))


def payment_view(payment: Payment) -> dict[str, Any]:
    """One payment as JSON: id, amount_usd, kind, status, created_at."""
    return {
        "id": payment.uuid,
        "amount_usd": usd_json(payment.amount_nanos),
        "kind": payment.kind,
        "status": payment.status,
        "created_at": iso_z(payment.created_at),
    }


def payment_for_session(session_id: str) -> Payment | None:
    """The payment a Checkout Session created or granted, if any."""
    return Payment.get_or_none(Payment.stripe_session_id == session_id)
