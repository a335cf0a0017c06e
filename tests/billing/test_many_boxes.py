"""Three boxes on one PostgreSQL database: a Stripe event delivered to all of them at once
credits once (and the books add up on every box)."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import httpx
import pytest

from tests.billing.conftest import BillingBox, BoxFactory
from tests.pg_cluster import SHARED_SECRET

pytestmark = pytest.mark.timeout(180)
NANOS = 1_000_000_000


async def deliver_to_all(boxes: list[BillingBox], events: list[dict[str, Any]]) -> list[Any]:
    """Every event on its own connection, all at once, spread over the boxes."""
    deliveries = [boxes[0].double.webhook(event) for event in events]
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        urls = itertools.cycle(box.server.base_url for box in boxes)
        return await asyncio.gather(
            *(
                client.post(f"{next(urls)}/api/v1/stripe/webhook", content=body, headers=headers)
                for body, headers in deliveries
            )
        )


def test_one_stripe_event_delivered_to_three_boxes_credits_once(
    billing_box_factory: BoxFactory, pg_url: str
) -> None:
    shared = {"database": {"url": pg_url}, "server": {"secret_key": SHARED_SECRET}}
    boxes = [billing_box_factory(**shared) for _ in range(3)]
    first = boxes[0]
    buyer = first.customer("many")
    session_id = first.start_topup(buyer, 25)
    paid = first.double.complete(session_id)
    again = first.double.event("checkout.session.completed", first.double.session(session_id))
    responses = asyncio.run(deliver_to_all(boxes, [paid] * 6 + [again] * 3))
    assert [r.status_code for r in responses] == [200] * 9
    results = [r.json()["result"] for r in responses]
    assert results.count("credited") == 1, results
    for box in boxes:
        assert box.balance_nanos(buyer) == 25 * NANOS
    assert first.payment_status(session_id) == "completed"
    first.audit()
