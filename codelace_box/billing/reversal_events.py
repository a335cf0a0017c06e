"""The Stripe events of refunds and disputes and what one says: its object, the refunds or
disputes it describes, and the charge whose refunds must be listed at Stripe instead
(`charge.refunded`, which does not embed them all). billing/reversals.py applies them."""

from __future__ import annotations

from typing import Any

from codelace_box.billing.reversal_amounts import Reversal, id_of, parse_reversals

REFUND_EVENTS = frozenset(
    {"refund.created", "refund.updated", "refund.failed", "charge.refund.updated"}
)
DISPUTE_EVENTS = frozenset(
    {
        "charge.dispute.created",
        "charge.dispute.updated",
        "charge.dispute.closed",
        "charge.dispute.funds_withdrawn",
        "charge.dispute.funds_reinstated",
    }
)
CHARGE_REFUNDED = "charge.refunded"
REVERSAL_EVENTS = REFUND_EVENTS | DISPUTE_EVENTS | {CHARGE_REFUNDED}


def object_of(event: dict[str, Any]) -> dict[str, Any]:
    """The event's `data.object` ({} when it has none)."""
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    return obj if isinstance(obj, dict) else {}


def reversals_in(event_type: str, obj: dict[str, Any]) -> list[Reversal]:
    """The refunds or disputes an event's object describes (a charge: the refunds it embeds)."""
    if event_type in REFUND_EVENTS:
        return parse_reversals([obj], "refund")
    if event_type in DISPUTE_EVENTS:
        return parse_reversals([obj], "dispute")
    refunds = obj.get("refunds")
    listed = refunds.get("data") if isinstance(refunds, dict) else None
    if not isinstance(listed, list):
        return []
    return parse_reversals(listed, "refund", id_of(obj.get("payment_intent")), obj)


def charge_to_list(event_type: str, obj: dict[str, Any]) -> tuple[str, str] | None:
    """(charge id, PaymentIntent) of a `charge.refunded` whose refunds must be listed at
    Stripe (the event does not embed them all); None otherwise."""
    if event_type != CHARGE_REFUNDED:
        return None
    refunds = obj.get("refunds")
    if isinstance(refunds, dict) and isinstance(refunds.get("data"), list):
        return None if not refunds.get("has_more") else _charge_and_intent(obj)
    return _charge_and_intent(obj)


def _charge_and_intent(obj: dict[str, Any]) -> tuple[str, str] | None:
    charge, intent = id_of(obj.get("id")), id_of(obj.get("payment_intent"))
    return (charge, intent) if charge and intent else None
