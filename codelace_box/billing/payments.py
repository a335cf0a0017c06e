"""Payment history: top-ups, trials and admin adjustments of an account (api/views.py shapes
them)."""

from __future__ import annotations

from codelace_box.db.models import Payment
from codelace_box.db.offload import read_in_db_thread

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def list_payments(user_id: int, limit: int = DEFAULT_LIMIT) -> list[Payment]:
    """The account's payments, newest first (along its index: `limit` rows read, however
    many it has)."""
    query = Payment.select().where(Payment.user == user_id)
    return list(query.order_by(Payment.created_at.desc(), Payment.id.desc()).limit(limit))


async def payment_history(user_id: int, limit: int = DEFAULT_LIMIT) -> list[Payment]:
    """`list_payments` as the API and the portal read it: on the database thread, never on the
    event loop (an account's payments are history: they grow as long as it pays)."""
    return await read_in_db_thread(list_payments, user_id, limit)


def payment_for_session(session_id: str) -> Payment | None:
    """The payment a Checkout Session created or granted, if any."""
    return Payment.get_or_none(Payment.stripe_session_id == session_id)
