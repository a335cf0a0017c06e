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

The trial itself (whose setup session, once per account and card) is billing/trial.py's; a
top-up's credit and payment row, billing/topup_credit.py's.
A top-up's PaymentIntent is recorded from its session's events; refunds and disputes, which
name it, are billing/reversals.py's: they take the credit back once each.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from codelace_box.billing.claims import (
    TopupClaim,
    topup_claim,
)
from codelace_box.billing.reversal_amounts import id_of, refuse_session_past_64_bits
from codelace_box.billing.reversal_events import REVERSAL_EVENTS
from codelace_box.billing.reversals import audit_topup, reversal_event
from codelace_box.billing.stripe import StripeApi, verify_event
from codelace_box.billing.thin_events import announced_type, snapshot_of
from codelace_box.billing.topup_credit import (
    close_unpaid,
    credit_session,
    known_topup,
    remember_intent,
)
from codelace_box.billing.trial import grant_trial, setup_intent_id, setup_session_owner
from codelace_box.config import StripeConfig
from codelace_box.db.core import connection, durable, exclusive
from codelace_box.db.models import StripeEvent, User
from codelace_box.db.offload import run_db_work
from codelace_box.money import usd_to_nanos

log = logging.getLogger("codelace_box.billing.webhooks")

COMPLETED = "checkout.session.completed"
ASYNC_SUCCEEDED = "checkout.session.async_payment_succeeded"
ASYNC_FAILED = "checkout.session.async_payment_failed"
EXPIRED = "checkout.session.expired"
HANDLED_TYPES = frozenset({COMPLETED, ASYNC_SUCCEEDED, ASYNC_FAILED, EXPIRED})
SETTLED = frozenset({"paid", "no_payment_required"})  # payment_status values with nothing due


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
    owner = setup_session_owner(session, api.box_secret) if session is not None else None
    if session is not None and await run_db_work(
        _wants_fingerprint, event_type, session, owner, trial_nanos
    ):
        fingerprint = await api.card_fingerprint(setup_intent_id(session))
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

    `setup_owner` is the account a setup session belongs to (trial.py setup_session_owner),
    None when the session is not one of this box's setup sessions; `claim` what a top-up
    session's signed metadata says (billing/claims.py), None when it proves nothing."""
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
    remember_intent(session_id, id_of(session.get("payment_intent")))
    status = session.get("payment_status")  # (an array or object: settles nothing)
    if event_type == ASYNC_SUCCEEDED or (
        event_type == COMPLETED and isinstance(status, str) and status in SETTLED
    ):
        return credit_session(session, claim)
    if event_type == COMPLETED:
        return "waiting" if known_topup(session_id) else "unknown_session"
    return close_unpaid(session_id, "failed" if event_type == ASYNC_FAILED else "expired")


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
