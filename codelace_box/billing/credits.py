"""Operator adjustments of a balance: a ledger entry plus a payment row of kind 'admin'."""

from __future__ import annotations

import uuid
from decimal import Decimal

from codelace_box.accounts.users import get_user
from codelace_box.billing.ledger import Posting, append_entry
from codelace_box.billing.money import usd_to_nanos
from codelace_box.db.core import utcnow, write_transaction
from codelace_box.db.models import Payment, User
from codelace_box.errors import InvalidRequest

MAX_ADJUSTMENT_USD = Decimal(1_000_000)


def adjust_balance(email: str, amount_usd: Decimal | str, reason: str) -> tuple[User, Posting]:
    """Add (or, negative, remove) credit; never below zero; recorded in ledger and payments."""
    try:
        nanos = usd_to_nanos(amount_usd)
    except ValueError as exc:
        raise InvalidRequest(f"amount must be a USD amount: {exc}") from None
    if nanos == 0 or abs(Decimal(nanos)) > MAX_ADJUSTMENT_USD * 1_000_000_000:
        raise InvalidRequest("amount must be non-zero and at most 1,000,000 USD either way")
    user = get_user(email)
    key = f"admin:{uuid.uuid4().hex}"
    with write_transaction():
        posting = append_entry(user.id, nanos, "admin", reason, key, allow_negative=False)
        Payment.create(
            user=user.id,
            amount_nanos=nanos,
            kind="admin",
            status="completed",
            completed_at=utcnow(),
        )
    return User.get_by_id(user.id), posting
