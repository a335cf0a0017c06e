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
answer. The log says so. Stripe's failures (5xx, no answer) stay a 5xx: Stripe delivers again;
so does a missing checkout session this box made (stripe.secret_key switched to another
account while it was open: acknowledged, its credit would be lost).
"""

from __future__ import annotations

import logging
from typing import Any

from codelace_box.billing.stripe import MAX_ID_CHARS, StripeApi, StripeObjectMissing
from codelace_box.db.models import Payment
from codelace_box.db.offload import run_db_work
from codelace_box.errors import InvalidRequest, UpstreamError

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
        if wanted == "checkout.session" and await run_db_work(_box_made, object_id):
            raise _made_here_but_missing(event, object_id) from None
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


def _box_made(session_id: str) -> bool:
    """Whether this box made the checkout session (a top-up of its own)."""
    return bool(Payment.select().where(Payment.stripe_session_id == session_id).exists())


def _made_here_but_missing(event: dict[str, Any], session_id: str) -> UpstreamError:
    """A session of this box's own that Stripe says it has not: read with a key of another
    account than the one it was made in (stripe.secret_key changed while it was open). Not
    acknowledged, so Stripe delivers it again and it is credited once the key is set back."""
    log.error(
        "Stripe event %s names checkout session %s, which this box made but Stripe (read with "
        "stripe.secret_key) does not have: is stripe.secret_key of the Stripe account the "
        "session was made in? The event is refused, so Stripe delivers it again",
        event["id"], session_id,
    )  # fmt: skip
    return UpstreamError(
        f"Stripe has no checkout session {session_id}, which this box made: stripe.secret_key "
        "is of another Stripe account than the one it was made in",
        code="stripe_error",
    )
