"""Operator adjustments of a balance: a ledger entry plus a payment row of kind 'admin'."""

from __future__ import annotations

import uuid
from decimal import Decimal

from codelace_box.accounts.users import clean_name, get_user
from codelace_box.billing.ledger import Posting, append_entry
from codelace_box.db.core import durable, utcnow
from codelace_box.db.models import Payment, User
from codelace_box.errors import InvalidRequest
from codelace_box.money import PLAIN_USD_TAKEN, AmountTooLarge, is_plain_usd, usd_to_nanos

MAX_ADJUSTMENT_USD = Decimal(1_000_000)
MAX_ADJUSTMENT_NANOS = usd_to_nanos(MAX_ADJUSTMENT_USD)
ADJUSTMENT_LIMIT = "amount must be non-zero and at most 1,000,000 USD either way"
MAX_REASON = 1000  # characters of an adjustment's reason


def adjustment_nanos(amount_usd: Decimal | str) -> int:
    """The nano-USD of an adjustment's amount: non-zero, at most MAX_ADJUSTMENT_USD either way
    (InvalidRequest otherwise; the CLI says it as a usage error, cli/amounts.py); text in
    plain decimals only (the dashboard took `1e2` as 100 USD)."""
    if not is_plain_usd(amount_usd):
        raise InvalidRequest(f"amount must be {PLAIN_USD_TAKEN}, got {str(amount_usd)[:40]!r}")
    try:
        nanos = usd_to_nanos(amount_usd)
    except AmountTooLarge:
        raise InvalidRequest(ADJUSTMENT_LIMIT) from None
    except ValueError as exc:
        raise InvalidRequest(f"amount must be a USD amount: {exc}") from None
    if nanos == 0 or abs(nanos) > MAX_ADJUSTMENT_NANOS:
        raise InvalidRequest(ADJUSTMENT_LIMIT)
    return nanos


def check_adjustment(amount_usd: Decimal | str, reason: str) -> int:
    """The nano-USD of an adjustment `adjust_balance` would accept (a client may check it
    before asking for confirmation); InvalidRequest saying what is wrong otherwise."""
    nanos = adjustment_nanos(amount_usd)
    check_reason(reason)
    return nanos


def check_reason(reason: str) -> None:
    """InvalidRequest unless `reason` is one line of text within MAX_REASON characters (it is
    shown in `audit` and the dashboard)."""
    if not reason.strip():
        raise InvalidRequest("a ledger entry needs a reason")
    clean_name(reason, "reason", MAX_REASON)


def adjust_balance(email: str, amount_usd: Decimal | str, reason: str) -> tuple[User, Posting]:
    """Add (or, negative, remove) credit; never below zero; recorded in ledger and payments."""
    nanos = check_adjustment(amount_usd, reason)
    user = get_user(email)
    key = f"admin:{uuid.uuid4().hex}"
    with durable():  # reported done: a crash right after must not take it back
        posting = append_entry(user.id, nanos, "admin", reason, key, allow_negative=False)
        Payment.create(
            user=user.id,
            amount_nanos=nanos,
            kind="admin",
            status="completed",
            completed_at=utcnow(),
        )
    return User.get_by_id(user.id), posting
