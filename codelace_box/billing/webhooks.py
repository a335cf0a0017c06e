"""Stripe webhooks: verified events turned into payment states and ledger credits, exactly once.

Every event is deduplicated by its id (a `stripe_event` row written in the same transaction as
its effect) and every credit by its session (ledger idempotency key `stripe:session:<id>`, or
`trial:<user_id>` for the trial), so any number of deliveries, in any order, at once or in
several workers, credit once. The effect is committed with an fsync (`durable()`) before the
caller answers 2xx. How a top-up's payment row moves:

    pending --completed(paid) / async_payment_succeeded--> completed   (credited once)
    pending --completed(unpaid)--> pending                 (an async method is still running)
    pending --async_payment_failed--> failed;  pending --expired--> expired
    failed/expired --paid--> completed   (Stripe says the money arrived: it is credited)
    completed --failed/expired--> completed   (nothing un-credits a payment)

"Paid" is `payment_status` `paid` or `no_payment_required` (a 100% discount), or
async_payment_succeeded. The credit is the session's `amount_total` (in its currency) capped at
the amount recorded when the session was created, so a discount credits what was paid and
nothing credits more than was asked for; the payment row takes the credited amount (a session
Adaptive Pricing localized is read in its own currency, `currency_conversion`). A signed
event without a total (a pared-down delivery) credits the recorded amount; a total in another
currency, or not a whole non-negative number, credits nothing: the payment stays pending and the
error log names the session for the operator. A total past 64 bits (Stripe's integers) is no
session Stripe made: refused (400 `invalid_event`) before anything is written, as such a refund
or dispute is (billing/reversal_amounts.py).

A completed setup session grants `stripe.trial_credit_usd` if the account never had a trial
and the card (its fingerprint) never earned one; a setup without a card grants nothing.
Sessions the box did not create (a top-up with no payment row here and no valid signed claim,
billing/claims.py, which recreates a row a restored database lost; a setup session without
this box's `setup_tag`, e.g. one another box on the same Stripe account made for its own user
of the same id, or whose `customer_email` is not its account's: claims.made_for), events
of the other Stripe mode than the secret key's (live vs test: a misconfigured webhook secret,
logged as an error), and event types it does not handle, are acknowledged and ignored (the
latter without touching the database).

A top-up's PaymentIntent is recorded from its session's events; refunds and disputes, which
name it, are billing/reversals.py's: they take the credit back once each.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from codelace_box.billing.checkout import (
    METADATA_KIND,
    METADATA_USER,
    minor_unit_exponent,
    setup_tag,
)
from codelace_box.billing.claims import (
    TopupClaim,
    carries_tag,
    made_for,
    restore_topup,
    topup_claim,
)
from codelace_box.billing.ledger import append_entry
from codelace_box.billing.reversal_amounts import id_of, refuse_session_past_64_bits
from codelace_box.billing.reversals import REVERSAL_EVENTS, audit_topup, catch_up, reversal_event
from codelace_box.billing.stripe import StripeApi, verify_event
from codelace_box.billing.thin_events import announced_type, snapshot_of
from codelace_box.config import StripeConfig
from codelace_box.db.core import connection, durable, exclusive, utcnow
from codelace_box.db.models import LedgerEntry, Payment, StripeEvent, TrialCard, User
from codelace_box.db.offload import run_db_work
from codelace_box.money import usd_to_nanos

log = logging.getLogger("codelace_box.billing.webhooks")

COMPLETED = "checkout.session.completed"
ASYNC_SUCCEEDED = "checkout.session.async_payment_succeeded"
ASYNC_FAILED = "checkout.session.async_payment_failed"
EXPIRED = "checkout.session.expired"
HANDLED_TYPES = frozenset({COMPLETED, ASYNC_SUCCEEDED, ASYNC_FAILED, EXPIRED})
SETTLED = frozenset({"paid", "no_payment_required"})  # payment_status values with nothing due
TRIAL_REASON = "trial credit for the first card setup"


@dataclass(frozen=True)
class WebhookOutcome:
    event_id: str
    event_type: str
    result: str  # what happened, e.g. credited, already_credited, duplicate, ignored


async def handle_webhook(
    api: StripeApi, payload: bytes, signature: str | None, config: StripeConfig
) -> WebhookOutcome:
    """Verify one delivery and apply it; returns once its effect is durably committed. Its
    database work runs off the event loop on PostgreSQL (db/offload.py run_db_work)."""
    event = verify_event(payload, signature, config.webhook_secret)
    event_id, event_type = str(event["id"]), announced_type(event)
    handled = event_type in HANDLED_TYPES | REVERSAL_EVENTS
    if handled and (other := other_mode(event, config.secret_key)) is not None:
        log.error(  # before a thin event's object is read: the key cannot read it (a 502)
            "Stripe sent a %s-mode event (%s) but stripe.secret_key is a %s-mode key: "
            "stripe.webhook_secret belongs to an endpoint of the other mode; event ignored",
            *(other, event_id, "test" if other == "live" else "live"),
        )
        return WebhookOutcome(event_id, event_type, "livemode_mismatch")
    event = await snapshot_of(api, event, HANDLED_TYPES | REVERSAL_EVENTS)  # thin_events.py
    event_type = str(event["type"])
    if event_type not in HANDLED_TYPES | REVERSAL_EVENTS:  # nothing to do, nor to remember
        return WebhookOutcome(event_id, event_type, "ignored")
    if await run_db_work(_seen, event_id):
        return WebhookOutcome(event_id, event_type, "duplicate")
    if event_type in REVERSAL_EVENTS:  # a refund or dispute (billing/reversals.py)
        result = await reversal_event(api, event_id, event_type, event)
        log.info("stripe event %s (%s): %s", event_id, event_type, result)
        return WebhookOutcome(event_id, event_type, result)
    session = session_of(event)
    if session is not None:
        refuse_session_past_64_bits(session)
    trial_nanos = usd_to_nanos(config.trial_credit_usd)
    fingerprint = None
    owner = _setup_owner(session, api.box_secret) if session is not None else None
    if session is not None and await run_db_work(
        _wants_fingerprint, event_type, session, owner, trial_nanos
    ):
        fingerprint = await api.card_fingerprint(_setup_intent_id(session))
    claim = topup_claim(session, api.box_secret) if session is not None else None
    result = await run_db_work(
        apply_durably, event_id, event_type, session, fingerprint, trial_nanos, owner, claim
    )
    log.info("stripe event %s (%s): %s", event_id, event_type, result)
    return WebhookOutcome(event_id, event_type, result)


def _seen(event_id: str) -> bool:
    return StripeEvent.get_or_none(StripeEvent.id == event_id) is not None


def apply_durably(
    event_id: str,
    event_type: str,
    session: dict[str, Any] | None,
    fingerprint: str | None,
    trial_nanos: int,
    setup_owner: int | None,
    claim: TopupClaim | None = None,
) -> str:
    """`apply_event` in its own transaction, committed with an fsync."""
    with durable():
        return apply_event(
            event_id, event_type, session, fingerprint, trial_nanos, setup_owner, claim
        )


def other_mode(event: dict[str, Any], secret_key: str) -> str | None:
    """The event's mode, "live" or "test", when the secret key is of the other; else None."""
    livemode = event.get("livemode")
    key_mode = "live" if "_live_" in secret_key else "test" if "_test_" in secret_key else None
    if not isinstance(livemode, bool) or key_mode is None:
        return None
    event_mode = "live" if livemode else "test"
    return event_mode if event_mode != key_mode else None


def session_of(event: dict[str, Any]) -> dict[str, Any] | None:
    """The Checkout Session an event carries, if it carries one (an object that leaves its
    `object` kind out is taken for the session its event type names)."""
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    kind = obj.get("object", "checkout.session") if isinstance(obj, dict) else None
    if isinstance(obj, dict) and kind == "checkout.session" and obj.get("id"):
        return obj
    return None


def apply_event(
    event_id: str,
    event_type: str,
    session: dict[str, Any] | None,
    fingerprint: str | None,
    trial_nanos: int,
    setup_owner: int | None = None,
    claim: TopupClaim | None = None,
) -> str:
    """The effect of one event; call inside a write transaction (no awaits in here).

    `setup_owner` is the account a setup session belongs to (`_setup_owner`), None when the
    session is not one of this box's setup sessions; `claim` what a top-up session's signed
    metadata says (billing/claims.py), None when it proves nothing."""
    exclusive(connection(), f"stripe:event:{event_id}")  # boxes sharing a database: one applies
    if session is not None:  # two events of one session, on two boxes, take turns
        exclusive(connection(), f"stripe:session:{session['id']}")
    if StripeEvent.get_or_none(StripeEvent.id == event_id) is not None:
        return "duplicate"
    StripeEvent.create(id=event_id, type=event_type[:200])
    if session is None or event_type not in HANDLED_TYPES:
        return "ignored"
    if session.get("mode") == "setup":
        if event_type != COMPLETED or session.get("status") != "complete":
            return "ignored"
        return grant_trial(session, setup_owner, fingerprint, trial_nanos)
    if session.get("mode") != "payment":
        return "ignored"
    result = apply_topup_event(event_type, session, claim)
    audit_topup((event_id, event_type), session, result)  # what it could not do (reversals.py)
    return result


def apply_topup_event(
    event_type: str, session: dict[str, Any], claim: TopupClaim | None = None
) -> str:
    """The effect of a handled event on a payment-mode (top-up) session."""
    session_id = str(session["id"])
    _remember_intent(session_id, id_of(session.get("payment_intent")))
    status = session.get("payment_status")  # (an array or object: settles nothing)
    if event_type == ASYNC_SUCCEEDED or (
        event_type == COMPLETED and isinstance(status, str) and status in SETTLED
    ):
        return credit_session(session, claim)
    if event_type == COMPLETED:
        return "waiting" if _known_topup(session_id) else "unknown_session"
    return close_unpaid(session_id, "failed" if event_type == ASYNC_FAILED else "expired")


def credit_session(session: dict[str, Any], claim: TopupClaim | None = None) -> str:
    """Credit a paid top-up session once and mark its payment completed.

    The credit is what the session says was paid (`amount_total` in its currency), but never
    more than the payment recorded when the session was created; the payment's amount becomes
    the credit. A paid amount that cannot be read in the payment's currency credits nothing.
    """
    session_id = str(session["id"])
    payment = _known_topup(session_id) or restore_topup(session_id, claim)
    if payment is None and claim is not None:  # ours (its tag holds), its account not here
        return "account_not_found"
    if payment is None:
        log.warning("paid Checkout Session %s is not one of ours; ignored", session_id)
        return "unknown_session"
    _remember_intent(session_id, id_of(session.get("payment_intent")))
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
    if _known_topup(session_id) is None:
        return "unknown_session"
    changed = (
        Payment.update(status=status)
        .where(Payment.stripe_session_id == session_id, Payment.status == "pending")
        .execute()
    )
    return f"marked_{status}" if changed else "unchanged"


def grant_trial(
    session: dict[str, Any], owner: int | None, fingerprint: str | None, trial_nanos: int
) -> str:
    """The trial credit for a completed card setup, once per account and once per card.

    Two setups of one account, or of one card, on two boxes at once take turns here (the
    account's lock, then the card's): both are read after their locks, so the second sees the
    first one's trial, and neither leaves a second trial payment nor fails on the card's row."""
    if owner is not None:
        exclusive(connection(), f"stripe:trial:{owner}")
    if owner is not None and fingerprint:
        exclusive(connection(), f"stripe:trial-card:{fingerprint}")
    user = User.get_or_none(User.id == owner) if owner is not None else None
    if user is None or not made_for(session, user):
        return "unknown_session"
    refusal = _trial_refusal(user, fingerprint, trial_nanos)
    if refusal or fingerprint is None:
        return refusal or "trial_no_card"
    append_entry(user.id, trial_nanos, "trial", TRIAL_REASON, f"trial:{user.id}")
    TrialCard.create(fingerprint=fingerprint, user=user.id)
    now = utcnow()
    User.update(trial_granted_at=now).where(User.id == user.id).execute()
    Payment.create(
        user=user.id,
        amount_nanos=trial_nanos,
        kind="trial",
        status="completed",
        stripe_session_id=str(session["id"]),
        currency="usd",
        completed_at=now,
    )
    return "trial_granted"


def _trial_refusal(user: User, fingerprint: str | None, trial_nanos: int) -> str | None:
    if trial_nanos <= 0:
        return "trial_off"
    if user.trial_granted_at is not None:
        return "trial_already_granted"
    if not fingerprint:
        return "trial_no_card"
    if TrialCard.get_or_none(TrialCard.fingerprint == fingerprint) is not None:
        return "trial_card_used"
    return None


def _remember_intent(session_id: str, payment_intent: str) -> None:
    """Record the PaymentIntent of a top-up session: its refunds and disputes name it."""
    if payment_intent and Payment.get_or_none(Payment.payment_intent == payment_intent) is None:
        Payment.update(payment_intent=payment_intent).where(
            Payment.stripe_session_id == session_id,
            Payment.kind == "topup",
            Payment.payment_intent.is_null(),
        ).execute()


def _known_topup(session_id: str) -> Payment | None:
    return Payment.get_or_none(Payment.stripe_session_id == session_id, Payment.kind == "topup")


def _setup_owner(session: dict[str, Any], box_secret: str) -> int | None:
    """The account id of a setup session this box created (its metadata proves it), else None."""
    metadata = session.get("metadata")
    if not isinstance(metadata, dict) or metadata.get(METADATA_KIND) != "setup":
        return None
    raw = str(metadata.get(METADATA_USER, ""))
    if not (raw.isascii() and raw.isdigit()) or raw != str(session.get("client_reference_id")):
        return None
    if not carries_tag(metadata, setup_tag(box_secret, int(raw))):
        return None
    return int(raw)


def _setup_intent_id(session: dict[str, Any]) -> str:
    intent = session.get("setup_intent")
    return str(intent.get("id") if isinstance(intent, dict) else intent)


def _wants_fingerprint(
    event_type: str, session: dict[str, Any], owner: int | None, trial_nanos: int
) -> bool:
    """Whether the trial could be granted, so the card must be looked up at Stripe first."""
    if event_type != COMPLETED or session.get("mode") != "setup" or trial_nanos <= 0:
        return False
    if session.get("status") != "complete" or not session.get("setup_intent"):
        return False
    user = User.get_or_none(User.id == owner) if owner is not None else None
    return user is not None and user.trial_granted_at is None
