"""Stripe's thin event notifications (an event destination whose payload style is "thin"):
the event names its object instead of carrying it. A paid session announced so was answered
200 `ignored` and never credited, silently; the box now reads the object at Stripe."""

from __future__ import annotations

from typing import Any

import pytest

from tests.billing.conftest import BillingBox
from tests.fakes.stripe_wire import StripeApiError, new_id

pytestmark = pytest.mark.timeout(120)
NANOS = 1_000_000_000


def thin(event_type: str, object_id: str, kind: str, path: str) -> dict[str, Any]:
    """A thin event as Stripe's event destinations send it (no `data`, the object by id)."""
    return {
        "id": new_id("evt"),
        "object": "v2.core.event",
        "type": event_type,
        "livemode": False,
        "created": "2026-12-04T12:00:00.000Z",
        "context": None,
        "related_object": {"id": object_id, "type": kind, "url": f"{path}/{object_id}"},
    }


def thin_session(event_type: str, session_id: str) -> dict[str, Any]:
    return thin(event_type, session_id, "checkout.session", "/v1/checkout/sessions")


def test_a_paid_session_announced_by_a_thin_event_is_credited_once(box: BillingBox) -> None:
    buyer = box.customer()
    session_id = box.start_topup(buyer, 20)
    box.double.complete(session_id)  # paid at Stripe; the snapshot event is never sent
    event = thin_session("v1.checkout.session.completed", session_id)
    answers = [box.deliver(event) for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    assert [a.json()["result"] for a in answers] == ["credited", "duplicate"]
    assert box.balance_nanos(buyer) == 20 * NANOS
    assert box.payment_status(session_id) == "completed"


def test_thin_events_of_an_async_payment_and_an_expiry_mark_the_payment(box: BillingBox) -> None:
    buyer = box.customer()
    waiting, failing, lapsing = (box.start_topup(buyer, amount) for amount in (11, 12, 13))
    for session_id in (waiting, failing):
        box.double.complete(session_id, payment_status="unpaid")
        completed = thin_session("v1.checkout.session.completed", session_id)
        assert box.deliver(completed).json()["result"] == "waiting"
    box.double.succeed_async(waiting)
    box.double.fail_async(failing)
    box.double.expire(lapsing)
    events = [
        thin_session("v1.checkout.session.async_payment_succeeded", waiting),
        thin_session("v1.checkout.session.async_payment_failed", failing),
        thin_session("v1.checkout.session.expired", lapsing),
    ]
    results = [box.deliver(event).json()["result"] for event in events]
    assert results == ["credited", "marked_failed", "marked_expired"]
    assert box.balance_nanos(buyer) == 11 * NANOS


def test_a_thin_card_setup_earns_the_trial(box: BillingBox) -> None:
    buyer = box.customer()
    setup_id = box.start_setup(buyer)
    box.double.complete(setup_id)
    event = thin_session("v1.checkout.session.completed", setup_id)
    assert box.deliver(event).json()["result"] == "trial_granted"
    assert box.balance_nanos(buyer) == 1 * NANOS


def test_thin_refunds_and_disputes_take_the_credit_back_once(box: BillingBox) -> None:
    """A refund or dispute announced thin was a 400 (not read); each is now read at Stripe."""
    refunded, disputed, listed = (box.customer() for _ in range(3))
    sessions = []
    for buyer, usd in ((refunded, 20), (disputed, 30), (listed, 40)):
        session_id = box.start_topup(buyer, usd)
        assert box.deliver(box.double.complete(session_id)).json()["result"] == "credited"
        sessions.append(session_id)
    _, created = box.double.refund(sessions[0], amount=500)
    refund_id = created["data"]["object"]["id"]
    refund = thin("v1.refund.created", refund_id, "refund", "/v1/refunds")
    assert [box.deliver(refund).json()["result"] for _ in range(2)] == ["reversed", "duplicate"]
    opened = box.double.dispute(sessions[1])
    dispute_id = opened["data"]["object"]["id"]
    dispute = thin("v1.charge.dispute.created", dispute_id, "dispute", "/v1/disputes")
    assert box.deliver(dispute).json()["result"] == "reversed"
    box.double.close_dispute(dispute_id, won=True)
    won = thin("v1.charge.dispute.closed", dispute_id, "dispute", "/v1/disputes")
    assert box.deliver(won).json()["result"] == "reversed"  # given back
    charge_refunded, _ = box.double.refund(sessions[2])
    charge_id = charge_refunded["data"]["object"]["id"]
    charge = thin("v1.charge.refunded", charge_id, "charge", "/v1/charges")
    assert box.deliver(charge).json()["result"] == "reversed"
    balances = [box.balance_nanos(buyer) for buyer in (refunded, disputed, listed)]
    assert balances == [15 * NANOS, 30 * NANOS, 0]


def test_a_thin_event_naming_another_kind_of_object_is_400(box: BillingBox) -> None:
    event = thin("v1.refund.created", "cs_test_not_a_refund", "checkout.session", "/v1/x")
    response = box.deliver(event)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_event"


def test_thin_events_the_box_does_not_handle_are_acknowledged(box: BillingBox) -> None:
    event = thin("v1.customer.created", "cus_test_thin", "customer", "/v1/customers")
    response = box.deliver(event)
    assert (response.status_code, response.json()["result"]) == (200, "ignored")


def test_a_thin_event_of_the_other_stripe_mode_is_ignored_and_logged(box: BillingBox) -> None:
    """A live-mode thin event at a box holding a test key names a live object, which the test
    key cannot read (Stripe: 404 No such checkout.session): it was a 502 that Stripe retries
    for days; as a full event of the other mode it is acknowledged and logged, reading nothing."""
    live = thin_session("v1.checkout.session.completed", "cs_live_" + "a1" * 30) | {
        "livemode": True
    }
    calls = len(box.double.requests)
    response = box.deliver(live)
    assert response.status_code == 200, response.text
    assert response.json()["result"] == "livemode_mismatch"
    assert len(box.double.requests) == calls  # nothing read at Stripe with the wrong key
    box.server.wait_for_log(r"live-mode event .* stripe\.secret_key is a test-mode key")


@pytest.mark.parametrize(
    ("event_type", "object_id", "kind", "path"),
    [
        ("v1.checkout.session.completed", "cs_test_gone", "checkout.session",
         "/v1/checkout/sessions"),
        ("v1.refund.created", "re_test_gone", "refund", "/v1/refunds"),
    ],
)  # fmt: skip
def test_a_thin_event_naming_an_object_stripe_does_not_have_is_acknowledged(
    box: BillingBox, event_type: str, object_id: str, kind: str, path: str
) -> None:
    """Stripe answers the box's read 404 `resource_missing`: a 502 made Stripe deliver the
    event again for days, each time to the same answer. There is nothing to do: it is
    acknowledged, the log says so, and nothing is written."""
    event = thin(event_type, object_id, kind, path)
    answers = [box.deliver(event) for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    assert [a.json()["result"] for a in answers] == ["ignored", "ignored"]
    box.server.wait_for_log(rf".*{event['id']}.*{object_id}.*Stripe does not have.*", count=1)
    assert box.query("SELECT count(*) FROM stripe_event WHERE id = ?", event["id"]) == [(0,)]
    log = box.server.log_text()
    assert box.double.secret_key not in log and box.double.webhook_secret not in log


def test_a_thin_event_read_while_stripe_fails_is_still_a_5xx(box: BillingBox) -> None:
    """Stripe's own failure (a 500) is no missing object: the event is answered 5xx, so
    Stripe delivers it again, and credits it once read."""
    buyer = box.customer()
    session_id = box.start_topup(buyer, 20)
    box.double.complete(session_id)
    event = thin_session("v1.checkout.session.completed", session_id)
    box.double.outage = StripeApiError(500, "An unknown error occurred", error_type="api_error")
    try:
        failed = box.deliver(event)
    finally:
        box.double.outage = None
    assert failed.status_code == 502, failed.text
    assert box.deliver(event).json()["result"] == "credited"
    assert box.balance_nanos(buyer) == 20 * NANOS


def test_a_session_the_box_made_that_stripe_says_it_has_not_is_refused_to_come_again(
    box: BillingBox,
) -> None:
    """A checkout session of the box's own read 404 (stripe.secret_key switched to another
    account while the checkout was open): acknowledging it lost its credit for good; refused
    (5xx), Stripe delivers it again, and it is credited once the key reads it again."""
    buyer = box.customer()
    session_id = box.start_topup(buyer, 20)
    box.double.complete(session_id)
    event = thin_session("v1.checkout.session.completed", session_id)
    kept = box.double.sessions.pop(session_id)  # as a key of another account reads it
    try:
        refused = box.deliver(event)
    finally:
        box.double.sessions[session_id] = kept
    assert refused.status_code == 502, refused.text
    assert "which this box made" in refused.json()["error"]["message"]
    assert box.balance_nanos(buyer) == 0
    assert box.deliver(event).json()["result"] == "credited"
    assert box.balance_nanos(buyer) == 20 * NANOS
