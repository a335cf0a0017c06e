"""A top-up the user walked away from: Stripe's cancel link names its payment
(`/billing/cancel?payment=<uuid>`, billing/checkout.py), and coming back through it expires
the session at Stripe and marks the payment expired by the `checkout.session.expired`
webhook's own code (webhooks.apply_topup_event), so the payment histories show it as they
show a session that timed out, at once, not up to Stripe's 30 minutes later.

Never losing a payment: only a session Stripe says it expired is marked (Stripe refuses to
expire a complete one: that payment is left to its completed event, which credits it), and a
payment already completed stays completed (close_unpaid moves only a pending one). Stripe
failing here changes nothing: the session expires by itself and its event marks it."""

from __future__ import annotations

import logging
import re
from typing import Any

from codelace_box.billing.stripe import StripeApi, StripeRefusal
from codelace_box.billing.webhooks import EXPIRED, apply_topup_event
from codelace_box.db.core import connection, durable, exclusive
from codelace_box.db.models import Payment
from codelace_box.db.offload import run_db_work
from codelace_box.errors import CodelaceError

log = logging.getLogger("codelace_box.billing.cancelled")

# A payment's uuid as the box writes it (db/ids.py): anything else is looked up nowhere
_PAYMENT_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


async def cancel_topup(api: StripeApi, payment_uuid: str) -> str | None:
    """Expire the pending top-up a cancel link names; its status afterwards (None: no top-up
    of this box's by that id). A completed or closed one asks Stripe nothing."""
    if not _PAYMENT_UUID.fullmatch(payment_uuid):
        return None
    found = await run_db_work(_topup, payment_uuid)
    if found is None or found[1] != "pending":
        return found[1] if found else None
    session_id = found[0]
    session: dict[str, Any] | None
    try:
        session = await api.expire_checkout_session(session_id)
    except StripeRefusal:  # complete (or already expired) at Stripe: as Stripe has it now
        session = await _as_stripe_has_it(api, session_id)
    except CodelaceError:  # Stripe down: the session expires by itself, its event marks it
        return "pending"
    if session is not None and session.get("status") == "expired":
        await run_db_work(_expire_durably, session)
    return str(session.get("status")) if session is not None else "pending"


def _topup(payment_uuid: str) -> tuple[str, str] | None:
    """A top-up's session id and status, by the payment's uuid."""
    payment = Payment.get_or_none(Payment.uuid == payment_uuid, Payment.kind == "topup")
    if payment is None or payment.stripe_session_id is None:
        return None
    return str(payment.stripe_session_id), str(payment.status)


async def _as_stripe_has_it(api: StripeApi, session_id: str) -> dict[str, Any] | None:
    """The session as Stripe holds it (None when Stripe cannot say)."""
    try:
        return await api.retrieve("checkout.session", session_id)
    except CodelaceError:
        return None


def _expire_durably(session: dict[str, Any]) -> str:
    """What the `checkout.session.expired` event does to its payment, in its own transaction
    under the session's lock (webhooks.apply_event's), committed with an fsync."""
    with durable():
        exclusive(connection(), f"stripe:session:{session['id']}")
        result = apply_topup_event(EXPIRED, session)
    log.info("checkout session %s expired on its cancel page: %s", session["id"], result)
    return result
