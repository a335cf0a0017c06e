"""A top-up session's credit and payment row: a paid session credited once (what it says was
paid, in its currency, at most the amount recorded when it was created), its payment marked
completed, failed or expired, and its PaymentIntent remembered (refunds and disputes name it).
billing/webhooks.py decides, by the event, which of these a Stripe event asks for."""

from __future__ import annotations

import logging
from typing import Any

from codelace_box.billing.checkout import minor_unit_exponent
from codelace_box.billing.claims import TopupClaim, restore_topup
from codelace_box.billing.ledger import append_entry
from codelace_box.billing.reversal_amounts import id_of
from codelace_box.billing.reversals import catch_up
from codelace_box.db.core import utcnow
from codelace_box.db.models import LedgerEntry, Payment

log = logging.getLogger("codelace_box.billing.webhooks")  # (its lines named as before the move)


def credit_session(session: dict[str, Any], claim: TopupClaim | None = None) -> str:
    """Credit a paid top-up session once and mark its payment completed.

    The credit is what the session says was paid (`amount_total` in its currency), but never
    more than the payment recorded when the session was created; the payment's amount becomes
    the credit. A paid amount that cannot be read in the payment's currency credits nothing.
    """
    session_id = str(session["id"])
    payment = known_topup(session_id) or restore_topup(session_id, claim)
    if payment is None and claim is not None:  # ours (its tag holds), its account not here
        return "account_not_found"
    if payment is None:
        log.warning("paid Checkout Session %s is not one of ours; ignored", session_id)
        return "unknown_session"
    remember_intent(session_id, id_of(session.get("payment_intent")))
    key = f"stripe:session:{session_id}"
    if LedgerEntry.get_or_none(LedgerEntry.idempotency_key == key) is None:
        return _credit_paid(session, payment, key)
    if payment.status != "completed":
        _complete(payment.id, None)
    return "already_credited"


def _credit_paid(session: dict[str, Any], payment: Payment, key: str) -> str:
    """Credit what the session says was paid, at most the payment recorded (`credit_session`)."""
    session_id = str(session["id"])
    paid = paid_nanos(session, payment.currency, payment.amount_nanos)
    if paid is None:
        log.error(
            "Checkout Session %s: the paid amount %r %r does not read as %s; not credited",
            session_id,
            session.get("amount_total"),
            session.get("currency"),
            payment.currency,
        )
        return "amount_mismatch"
    amount = min(paid, payment.amount_nanos)
    if amount != payment.amount_nanos:
        log.warning(
            "Checkout Session %s paid %s nano-USD of the %s recorded; crediting %s",
            *(session_id, paid, payment.amount_nanos, amount),
        )
    reason = f"Stripe top-up (Checkout Session {session_id})"
    append_entry(payment.user.id, amount, "topup", reason, key)
    _complete(payment.id, amount)
    catch_up(Payment.get_by_id(payment.id))  # refunds and disputes heard of before
    return "credited"


def paid_nanos(session: dict[str, Any], currency: str, recorded_nanos: int) -> int | None:
    """What a session says was paid, in nano-USD, if it is a whole amount in `currency`; the
    recorded amount when the (signed) event leaves the total out.

    A session Adaptive Pricing localized, seen by an endpoint on an API version before
    2025-03-31.basil, carries the customer's currency and amount in `currency` and
    `amount_total`, and the session's own in `currency_conversion` (`source_currency`,
    `amount_total`): that one is read then."""
    total = session.get("amount_total")
    if total is None:
        return recorded_nanos
    paid_in = str(session.get("currency") or currency).lower()
    conversion = session.get("currency_conversion")
    if paid_in != currency.lower() and isinstance(conversion, dict):
        total = conversion.get("amount_total")
        paid_in = str(conversion.get("source_currency") or "").lower()
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        return None
    if paid_in != currency.lower():
        return None
    return total * 10 ** (9 - minor_unit_exponent(currency))


def _complete(payment_id: int, amount_nanos: int | None) -> None:
    changes: dict[str, Any] = {"status": "completed", "completed_at": utcnow()}
    if amount_nanos is not None:
        changes["amount_nanos"] = amount_nanos
    Payment.update(**changes).where(Payment.id == payment_id).execute()


def close_unpaid(session_id: str, status: str) -> str:
    """Mark a still-pending top-up failed or expired; a completed one stays completed."""
    if known_topup(session_id) is None:
        return "unknown_session"
    changed = (
        Payment.update(status=status)
        .where(Payment.stripe_session_id == session_id, Payment.status == "pending")
        .execute()
    )
    return f"marked_{status}" if changed else "unchanged"


def remember_intent(session_id: str, payment_intent: str) -> None:
    """Record the PaymentIntent of a top-up session: its refunds and disputes name it."""
    if payment_intent and Payment.get_or_none(Payment.payment_intent == payment_intent) is None:
        Payment.update(payment_intent=payment_intent).where(
            Payment.stripe_session_id == session_id,
            Payment.kind == "topup",
            Payment.payment_intent.is_null(),
        ).execute()


def known_topup(session_id: str) -> Payment | None:
    return Payment.get_or_none(Payment.stripe_session_id == session_id, Payment.kind == "topup")
