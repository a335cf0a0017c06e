"""Stripe's thin event notifications: what an event destination with the "thin" payload style
sends instead of the event's object (`"object": "v2.core.event"`, `"type": "v1.<type>"`, the
object named in `related_object`, no `data`).

A thin event of a type the box handles is made its snapshot: the object it names (a Checkout
Session, refund, dispute or charge) read at Stripe, in its state now, which is at least as far
along as when the event was sent. Both the sessions' and the reversals' handling go by the
object's state (a redelivered or late event changes nothing), so the snapshot is handled as
the event with its own object would be. A thin event naming another kind of object than its
type's is a 400 `invalid_event`; any other thin event is acknowledged and ignored, and so is
one naming an object Stripe says it does not have (its 404 `resource_missing`: a deleted test
object, another account's): a 5xx would have Stripe deliver it again for days to the same
answer. The log says so. Stripe's failures (5xx, no answer) stay a 5xx: Stripe delivers again.
"""

from __future__ import annotations

import logging
from typing import Any

from codelace_box.billing.stripe import MAX_ID_CHARS, StripeApi, StripeObjectMissing
from codelace_box.errors import InvalidRequest

log = logging.getLogger("codelace_box.billing.thin_events")
THIN = "v2.core.event"


def object_type(kind: str) -> str:
    """The type of object Stripe names in an event of `kind` (a handled one)."""
    if kind.startswith("checkout.session."):
        return "checkout.session"
    if kind.startswith("charge.dispute."):
        return "dispute"
    return "charge" if kind == "charge.refunded" else "refund"


def announced_type(event: dict[str, Any]) -> str:
    """The type of event this one announces: a thin one's without its `v1.` prefix."""
    kind = str(event["type"])
    return kind.removeprefix("v1.") if event.get("object") == THIN else kind


async def snapshot_of(
    api: StripeApi, event: dict[str, Any], handled: frozenset[str]
) -> dict[str, Any]:
    """The snapshot event of a thin one whose type is in `handled`, its object read at
    Stripe; any other event as it came, and so a thin one whose object Stripe does not have
    (its `v1.` type is none the box handles: acknowledged, nothing done)."""
    kind = announced_type(event)
    if event.get("object") != THIN or kind not in handled:
        return event
    related = event.get("related_object")
    named = related if isinstance(related, dict) else {}
    object_id, wanted = named.get("id"), object_type(kind)
    if named.get("type") != wanted or not isinstance(object_id, str):
        object_id = ""
    if not object_id or len(object_id) > MAX_ID_CHARS:
        raise InvalidRequest(f"thin {kind} event names no {wanted}", code="invalid_event")
    try:
        obj = await api.retrieve(wanted, object_id)
    except StripeObjectMissing:
        log.warning(
            "Stripe event %s (thin %s) names %s %s, which Stripe does not have: acknowledged, "
            "nothing done (if every event says so, are stripe.secret_key and "
            "stripe.webhook_secret of one Stripe account?)",
            *(event["id"], kind, wanted, object_id),
        )
        return event
    return {
        "id": event["id"],
        "type": kind,
        "livemode": event.get("livemode"),
        "data": {"object": obj},
    }
