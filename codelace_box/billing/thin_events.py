"""Stripe's thin event notifications: what an event destination with the "thin" payload style
sends instead of the event's object (`"object": "v2.core.event"`, `"type": "v1.<type>"`, the
object named in `related_object`, no `data`).

A Checkout Session event announced so is read at Stripe (its state now, which is at least as
far along as when the event was sent) and handled as the snapshot event would be. A refund or
dispute announced so is refused with 400 `thin_event` and an error line saying to use the
Snapshot payload style: Stripe then shows its deliveries failing rather than acknowledged
with nothing taken back. Any other thin event is acknowledged and ignored, as its snapshot is.
"""

from __future__ import annotations

import logging
from typing import Any

from codelace_box.billing.stripe import MAX_ID_CHARS, StripeApi
from codelace_box.errors import InvalidRequest

log = logging.getLogger("codelace_box.billing.thin_events")

THIN = "v2.core.event"


async def snapshot_of(
    api: StripeApi, event: dict[str, Any], sessions: frozenset[str], refused: frozenset[str]
) -> dict[str, Any]:
    """The snapshot event of a thin one whose type is in `sessions` (its session read at
    Stripe); InvalidRequest for one in `refused`; any other event as it came."""
    kind = str(event["type"]).removeprefix("v1.")
    if event.get("object") != THIN or kind not in sessions | refused:
        return event
    if kind in refused:
        log.error(
            "Stripe sent a thin %s event (%s): the box does not read refunds and disputes "
            "from thin events; set the webhook endpoint's payload style to Snapshot",
            *(kind, event["id"]),
        )
        raise InvalidRequest(
            f"thin {kind} events are not handled: give the webhook endpoint the Snapshot "
            "payload style",
            code="thin_event",
        )
    related = event.get("related_object")
    session_id = related.get("id") if isinstance(related, dict) else None
    if (
        not (isinstance(session_id, str) and session_id.startswith("cs_"))
        or len(session_id) > MAX_ID_CHARS
    ):
        raise InvalidRequest("thin event names no Checkout Session", code="invalid_event")
    session = await api.checkout_session(session_id)
    return {
        "id": event["id"],
        "type": kind,
        "livemode": event.get("livemode"),
        "data": {"object": session},
    }
