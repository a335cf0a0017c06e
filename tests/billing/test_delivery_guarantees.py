"""Exactly once under real pressure: deliveries racing in two worker processes, and a box
killed (SIGKILL) the instant it acknowledged a webhook still has the credit on disk."""

from __future__ import annotations

import asyncio
import secrets
import signal
from typing import Any

import httpx
import pytest

from tests.billing.conftest import BillingBox, BoxFactory
from tests.support import TLS

pytestmark = pytest.mark.timeout(120)
NANOS = 1_000_000_000


async def deliver_at_once(box: BillingBox, events: list[dict[str, Any]]) -> list[httpx.Response]:
    """Every event on its own connection, all at once (the workers share the port)."""
    deliveries = [box.double.webhook(event) for event in events]
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(
        base_url=box.server.base_url, timeout=30, limits=limits, verify=TLS
    ) as c:
        return await asyncio.gather(
            *(c.post("/api/v1/stripe/webhook", content=b, headers=h) for b, h in deliveries)
        )


@pytest.fixture(scope="module")
def two_workers(billing_box_factory: BoxFactory) -> BillingBox:
    return billing_box_factory(workers=2)


def test_racing_deliveries_in_two_workers_credit_once(two_workers: BillingBox) -> None:
    box = two_workers
    buyers = [box.customer("race") for _ in range(3)]
    for buyer in buyers:
        session_id = box.start_topup(buyer, 25)
        paid = box.double.complete(session_id)
        also_paid = box.double.event("checkout.session.completed", box.double.session(session_id))
        late_expiry = box.double.event(
            "checkout.session.expired", box.double.session(session_id) | {"status": "expired"}
        )
        events = [paid] * 5 + [also_paid] * 3 + [late_expiry] * 2
        responses = asyncio.run(deliver_at_once(box, events))
        assert [r.status_code for r in responses] == [200] * len(events)
        results = [r.json()["result"] for r in responses]
        assert results.count("credited") == 1, results
        assert box.balance_nanos(buyer) == 25 * NANOS
        assert box.payment_status(session_id) == "completed"


def test_one_card_racing_in_two_workers_earns_one_trial(two_workers: BillingBox) -> None:
    box = two_workers
    fingerprint = "fp_" + secrets.token_hex(6)
    people = [box.customer("card") for _ in range(4)]
    events = [box.double.complete(box.start_setup(p), card_fingerprint=fingerprint) for p in people]
    responses = asyncio.run(deliver_at_once(box, events + events))
    assert [r.status_code for r in responses] == [200] * 8
    assert sum(box.balance_nanos(p) for p in people) == 1 * NANOS
    assert box.query("SELECT COUNT(*) FROM trial_card WHERE fingerprint = ?", fingerprint) == [(1,)]


def test_an_acknowledged_credit_survives_sigkill(billing_box_factory: BoxFactory) -> None:
    box = billing_box_factory()
    buyer = box.customer()
    session_id = box.start_topup(buyer, 33)
    response = box.deliver(box.double.complete(session_id))
    assert response.status_code == 200
    process = box.server.process
    assert process is not None
    process.send_signal(signal.SIGKILL)  # no shutdown, no checkpoint: only what was committed
    process.wait(10)
    assert box.balance_nanos(buyer) == 33 * NANOS
    assert box.payment_status(session_id) == "completed"
    code, output = box.doctor()
    assert code == 0, output
