"""Stripe's webhooks against the running box: signed deliveries from the double, repeated, at
once and out of order, must credit every paid session exactly once and never un-credit."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from typing import Any

import httpx
import pytest

from tests.billing.conftest import WEBHOOK_SECRET, BillingBox, BoxFactory, Customer
from tests.fakes.stripe_wire import sign_payload
from tests.support import TLS

pytestmark = pytest.mark.timeout(120)
NANOS = 1_000_000_000


def topup_entries(box: BillingBox, buyer: Customer) -> list[tuple[Any, ...]]:
    return [row for row in box.ledger(buyer) if row[0] == "topup"]


async def deliver_at_once(box: BillingBox, events: list[dict[str, Any]]) -> list[httpx.Response]:
    """Deliver all events concurrently, each on its own connection."""
    deliveries = [box.double.webhook(event) for event in events]
    async with httpx.AsyncClient(base_url=box.server.base_url, timeout=30, verify=TLS) as client:
        return await asyncio.gather(
            *(
                client.post("/api/v1/stripe/webhook", content=body, headers=headers)
                for body, headers in deliveries
            )
        )


def test_a_paid_session_delivered_five_times_in_a_row_credits_once(box: BillingBox) -> None:
    buyer = box.customer()
    session_id = box.start_topup(buyer, 20)
    event = box.double.complete(session_id)
    results = [box.deliver(event) for _ in range(5)]
    assert [r.status_code for r in results] == [200] * 5
    assert [r.json()["result"] for r in results] == ["credited"] + ["duplicate"] * 4
    assert topup_entries(box, buyer) == [("topup", 20 * NANOS, f"stripe:session:{session_id}")]
    assert box.balance_nanos(buyer) == 20 * NANOS
    assert box.payment_status(session_id) == "completed"


def test_a_paid_session_delivered_five_times_at_once_credits_once(box: BillingBox) -> None:
    buyer = box.customer()
    session_id = box.start_topup(buyer, 30)
    event = box.double.complete(session_id)
    responses = asyncio.run(deliver_at_once(box, [event] * 5))
    assert [r.status_code for r in responses] == [200] * 5
    assert sorted(r.json()["result"] for r in responses) == ["credited"] + ["duplicate"] * 4
    assert box.balance_nanos(buyer) == 30 * NANOS
    assert len(topup_entries(box, buyer)) == 1


def test_different_events_for_one_session_at_once_credit_once(box: BillingBox) -> None:
    buyer = box.customer()
    session_id = box.start_topup(buyer, 15)
    completed = box.double.complete(session_id, payment_status="unpaid")
    succeeded = box.double.succeed_async(session_id)
    paid_again = box.double.event("checkout.session.completed", box.double.session(session_id))
    events = [completed, succeeded, paid_again, succeeded, paid_again]
    responses = asyncio.run(deliver_at_once(box, events))
    assert [r.status_code for r in responses] == [200] * 5
    assert box.balance_nanos(buyer) == 15 * NANOS
    assert len(topup_entries(box, buyer)) == 1
    assert box.payment_status(session_id) == "completed"


def test_async_payment_waits_then_credits_on_success(box: BillingBox) -> None:
    buyer = box.customer()
    session_id = box.start_topup(buyer, 40)
    waiting = box.deliver(box.double.complete(session_id, payment_status="unpaid"))
    assert waiting.json()["result"] == "waiting"
    assert box.payment_status(session_id) == "pending"
    assert box.balance_nanos(buyer) == 0
    assert box.deliver(box.double.succeed_async(session_id)).json()["result"] == "credited"
    assert box.payment_status(session_id) == "completed"
    assert box.balance_nanos(buyer) == 40 * NANOS


def test_async_payment_failure_marks_the_payment_failed(box: BillingBox) -> None:
    buyer = box.customer()
    session_id = box.start_topup(buyer, 40)
    box.deliver(box.double.complete(session_id, payment_status="unpaid"))
    response = box.deliver(box.double.fail_async(session_id))
    assert response.json()["result"] == "marked_failed"
    assert box.payment_status(session_id) == "failed"
    assert box.balance_nanos(buyer) == 0
    assert box.ledger(buyer) == []


def test_an_expired_session_marks_the_payment_expired(box: BillingBox) -> None:
    buyer = box.customer()
    session_id = box.start_topup(buyer, 11)
    assert box.deliver(box.double.expire(session_id)).json()["result"] == "marked_expired"
    assert box.payment_status(session_id) == "expired"
    assert box.balance_nanos(buyer) == 0
    [payment] = box.history(buyer)
    assert payment["status"] == "expired"


def test_success_arriving_before_the_unpaid_completion_credits_once(box: BillingBox) -> None:
    buyer = box.customer()
    session_id = box.start_topup(buyer, 13)
    completed = box.double.complete(session_id, payment_status="unpaid")
    succeeded = box.double.succeed_async(session_id)
    assert box.deliver(succeeded).json()["result"] == "credited"
    assert box.deliver(completed).json()["result"] == "waiting"
    assert box.payment_status(session_id) == "completed"
    assert box.balance_nanos(buyer) == 13 * NANOS


@pytest.mark.parametrize("late", ["expired", "failed"])
def test_a_late_expiry_or_failure_never_uncredits(box: BillingBox, late: str) -> None:
    buyer = box.customer()
    session_id = box.start_topup(buyer, 17)
    paid = box.double.complete(session_id)
    # Built before delivery but delivered after: what Stripe's unordered retries can do.
    stale = (
        box.double.event(
            "checkout.session.expired", box.double.session(session_id) | {"status": "expired"}
        )
        if late == "expired"
        else box.double.fail_async(session_id)
    )
    assert box.deliver(paid).json()["result"] == "credited"
    assert box.deliver(stale).json()["result"] == "unchanged"
    assert box.payment_status(session_id) == "completed"
    assert box.balance_nanos(buyer) == 17 * NANOS


def test_payment_after_expiry_is_credited(box: BillingBox) -> None:
    """Decision: a paid event is Stripe saying the money arrived, so it wins over `expired`."""
    buyer = box.customer()
    session_id = box.start_topup(buyer, 14)
    expired = box.double.event(
        "checkout.session.expired", box.double.session(session_id) | {"status": "expired"}
    )
    paid = box.double.complete(session_id)
    assert box.deliver(expired).json()["result"] == "marked_expired"
    assert box.deliver(paid).json()["result"] == "credited"
    assert box.payment_status(session_id) == "completed"
    assert box.balance_nanos(buyer) == 14 * NANOS
    assert box.deliver(expired).json()["result"] == "duplicate"
    assert box.payment_status(session_id) == "completed"


def test_success_after_failure_credits_once_and_nothing_uncredits(box: BillingBox) -> None:
    """Stripe cannot do this; if it did, the money it says arrived is credited, once."""
    buyer = box.customer()
    session_id = box.start_topup(buyer, 16)
    box.deliver(box.double.complete(session_id, payment_status="unpaid"))
    failed = box.double.fail_async(session_id)
    succeeded = box.double.succeed_async(session_id)
    results = [box.deliver(e).json()["result"] for e in (failed, succeeded, failed, succeeded)]
    assert results == ["marked_failed", "credited", "duplicate", "duplicate"]
    late_failure = box.double.fail_async(session_id)  # a new event id
    assert box.deliver(late_failure).json()["result"] == "unchanged"
    assert box.payment_status(session_id) == "completed"
    assert topup_entries(box, buyer) == [("topup", 16 * NANOS, f"stripe:session:{session_id}")]


def _event_count(box: BillingBox) -> int:
    return int(box.query("SELECT COUNT(*) FROM stripe_event")[0][0])


def test_bad_signatures_are_400_and_change_nothing(box: BillingBox) -> None:
    buyer = box.customer()
    session_id = box.start_topup(buyer, 20)
    event = box.double.complete(session_id)
    events_before = _event_count(box)
    body, headers = box.double.webhook(event)
    tampered = body.replace(b'"paid"', b'"paid" ')
    unsigned = {k: v for k, v in headers.items() if k != "stripe-signature"}
    cases = {
        "wrong secret": box.double.webhook(event, secret="whsec_not_the_right_one"),
        "stale timestamp": box.double.webhook(event, timestamp=int(time.time()) - 301),
        "tampered body": (tampered, headers),
        "missing header": (body, unsigned),
        "garbage header": (body, headers | {"stripe-signature": "nonsense"}),
        "no v1 scheme": (body, headers | {"stripe-signature": f"t={int(time.time())}"}),
        "v0 only": (body, headers | {"stripe-signature": _scheme_only(body, "v0")}),
        "future timestamp": box.double.webhook(event, timestamp=int(time.time()) + 3600),
        "not utf-8": (b"\xff\xfe" + body, headers),
        "header not text": (body, headers | {"stripe-signature": b"t=1,v1=\xe9\xff"}),
        "signature not text": (
            body,
            headers | {"stripe-signature": f"t={int(time.time())},v1=".encode() + b"\xe9\xff"},
        ),
    }
    for name, (payload, sent_headers) in cases.items():
        response = box.http.post("/api/v1/stripe/webhook", content=payload, headers=sent_headers)
        assert response.status_code == 400, name
        error = response.json()["error"]
        assert error["code"] == "invalid_signature", name
        assert box.double.webhook_secret not in response.text
    assert _event_count(box) == events_before
    assert box.payment_status(session_id) == "pending"
    assert box.ledger(buyer) == []
    # The genuine delivery still works afterwards: the refused ones recorded nothing.
    assert box.deliver(event).json()["result"] == "credited"
    assert box.balance_nanos(buyer) == 20 * NANOS


def test_a_wrong_signing_secret_is_logged_once_a_minute_in_words(
    billing_box_factory: BoxFactory,
) -> None:
    """A box whose stripe.webhook_secret is not the endpoint's refuses every delivery (400):
    customers pay and get no credit. The log says so, once a minute, without the secrets."""
    fresh = billing_box_factory()  # its own process: no earlier refusal within the minute
    buyer = fresh.customer()
    event = fresh.double.complete(fresh.start_topup(buyer, 20))
    sent = [fresh.double.webhook(event, secret="whsec_another_endpoints_secret") for _ in "ab"]
    for body, headers in sent:
        response = fresh.http.post("/api/v1/stripe/webhook", content=body, headers=headers)
        assert response.status_code == 400
    log = fresh.server.log_text()
    warnings = [line for line in log.splitlines() if "signing secret (whsec_...)" in line]
    assert len(warnings) == 1, log
    assert "WARNING" in warnings[0] and "check stripe.webhook_secret" in warnings[0]
    assert "whsec_another" not in log and fresh.double.webhook_secret not in log
    assert all(h["stripe-signature"].split("v1=")[1] not in log for _, h in sent)


def _scheme_only(body: bytes, scheme: str) -> str:
    """A header carrying only `scheme` signatures (computed with the right secret)."""
    moment = int(time.time())
    signed = f"{moment}.".encode() + body
    digest = hmac.new(WEBHOOK_SECRET.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={moment},{scheme}={digest}"


def test_a_rotated_secret_header_with_two_v1_signatures_is_accepted(box: BillingBox) -> None:
    """While a signing secret is rolled, Stripe signs with both: any matching v1 verifies."""
    buyer = box.customer()
    session_id = box.start_topup(buyer, 21)
    body, headers = box.double.webhook(box.double.complete(session_id))
    moment = int(time.time())
    old = sign_payload(body, "whsec_the_old_rolled_secret", moment).split(",")[1]
    new = sign_payload(body, box.double.webhook_secret, moment).split(",")[1]
    rotated = headers | {"stripe-signature": f"t={moment},{old},{new}"}
    response = box.http.post("/api/v1/stripe/webhook", content=body, headers=rotated)
    assert response.status_code == 200, response.text
    assert response.json()["result"] == "credited"
    assert box.balance_nanos(buyer) == 21 * NANOS


def test_a_signed_body_that_is_not_an_event_is_400(box: BillingBox) -> None:
    for body in (b"[1, 2]", b'{"object": "event"}', b"not json"):
        signature = sign_payload(body, box.double.webhook_secret, int(time.time()))
        response = box.http.post(
            "/api/v1/stripe/webhook", content=body, headers={"stripe-signature": signature}
        )
        assert response.status_code == 400, body
        assert response.json()["error"]["code"] == "invalid_event"


@pytest.mark.parametrize(
    "body",
    [
        b'{"id": "evt_lone", "type": "x.\\ud800", "data": {"object": {}}}',
        b'{"id": "evt_deep", "type": "x", "data": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
    ],
    ids=["lone-surrogate", "nested-too-deep"],
)
def test_a_signed_body_that_is_no_text_or_too_deep_is_400(box: BillingBox, body: bytes) -> None:
    """A lone surrogate escape reached the database's insert of the event (UnicodeEncodeError)
    and a body nested past json's reach raised RecursionError: each was a 500 and a traceback."""
    signature = sign_payload(body, box.double.webhook_secret, int(time.time()))
    response = box.http.post(
        "/api/v1/stripe/webhook", content=body, headers={"stripe-signature": signature}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_event"


def test_unknown_events_and_foreign_sessions_are_acknowledged_and_ignored(
    box: BillingBox,
) -> None:
    buyer = box.customer()
    intent = {"id": "pi_test_123", "object": "payment_intent", "amount": 5000}
    assert box.deliver(box.double.event("payment_intent.succeeded", intent)).json() == {
        "received": True,
        "result": "ignored",
    }
    # A session some other integration of the same Stripe account created: not ours.
    foreign = box.foreign_paid_session({"codelace_user_id": str(buyer.user_id)})
    response = box.deliver(box.double.complete(foreign))
    assert response.status_code == 200
    assert response.json()["result"] == "unknown_session"
    assert box.balance_nanos(buyer) == 0


def test_event_types_the_box_does_not_handle_leave_no_row_behind(box: BillingBox) -> None:
    """An endpoint subscribed to every event of a busy Stripe account (one that sells other
    things too) would otherwise write and fsync a row per charge, invoice and customer
    event, kept forever, for events that change nothing here."""
    before = box.query("SELECT COUNT(*) FROM stripe_event")[0][0]
    for event_type in ("charge.succeeded", "customer.created", "invoice.paid"):
        event = box.double.event(event_type, {"id": "ch_test_1", "object": "charge"})
        assert box.deliver(event).json()["result"] == "ignored"
        assert box.deliver(event).json()["result"] == "ignored"
    assert box.query("SELECT COUNT(*) FROM stripe_event")[0][0] == before


def test_a_handled_event_type_carrying_no_session_is_ignored(box: BillingBox) -> None:
    buyer = box.customer()
    session_id = box.start_topup(buyer, 20)
    intent = {"id": session_id, "object": "payment_intent", "status": "succeeded"}
    for obj in (intent, "not an object", None):
        event = box.double.event("checkout.session.completed", {})
        event["data"]["object"] = obj
        response = box.deliver(event)
        assert response.status_code == 200, response.text
        assert response.json()["result"] == "ignored"
    assert box.payment_status(session_id) == "pending"
    assert box.balance_nanos(buyer) == 0


def test_a_session_that_leaves_its_object_kind_out_is_still_credited(box: BillingBox) -> None:
    """A pared-down delivery: the session object without `"object": "checkout.session"`."""
    buyer = box.customer()
    session_id = box.start_topup(buyer, 20)
    box.double.complete(session_id)
    session = {k: v for k, v in box.double.session(session_id).items() if k != "object"}
    response = box.deliver(box.double.event("checkout.session.completed", session))
    assert response.status_code == 200, response.text
    assert response.json()["result"] == "credited"
    assert box.balance_nanos(buyer) == 20 * NANOS
    assert box.payment_status(session_id) == "completed"


def test_a_body_over_the_size_limit_is_413_and_changes_nothing(
    billing_box_factory: BoxFactory,
) -> None:
    small = billing_box_factory(server={"max_body_bytes": 4096})
    buyer = small.customer()
    session_id = small.start_topup(buyer, 20)
    event = small.double.complete(session_id)
    event["padding"] = "x" * 8192
    response = small.deliver(event)
    assert response.status_code == 413, response.text
    assert "error" in response.json()
    assert small.payment_status(session_id) == "pending"
    assert small.balance_nanos(buyer) == 0


def test_an_event_of_the_other_stripe_mode_is_ignored_and_logged(box: BillingBox) -> None:
    """A live-mode event at a box holding a test key (sk_test_) means the webhook secret is
    another endpoint's: nothing changes, and the log tells the operator what to check."""
    buyer = box.customer()
    session_id = box.start_topup(buyer, 20)
    event = box.double.complete(session_id)
    live = event | {"livemode": True, "id": event["id"] + "_live"}
    live["data"] = {"object": event["data"]["object"] | {"livemode": True}}
    response = box.deliver(live)
    assert response.status_code == 200, response.text
    assert response.json()["result"] == "livemode_mismatch"
    assert box.balance_nanos(buyer) == 0
    box.server.wait_for_log(r"live-mode event .* stripe\.secret_key is a test-mode key")
    assert box.deliver(event).json()["result"] == "credited"


def test_a_genuine_signature_whose_timestamp_carries_more_is_not_a_500(box: BillingBox) -> None:
    """Stripe's library reads `t=` up to a second `=` ("t=<time>=x" is <time>), so a genuine
    delivery whose header was so edited (a proxy, or someone replaying it) verified, and the
    box's own reading of the time for its future check raised ValueError: a 500 with a
    traceback. The box reads the time as the library does; the delivery counts once."""
    buyer = box.customer()
    session_id = box.start_topup(buyer, 22)
    body, _ = box.double.webhook(box.double.complete(session_id))
    moment = int(time.time())
    v1 = sign_payload(body, box.double.webhook_secret, moment).split(",")[1]
    results = []
    for header in (f"t={moment}=x,{v1}", f"t={moment}={moment + 9999},{v1}"):
        response = box.http.post(
            "/api/v1/stripe/webhook", content=body, headers={"stripe-signature": header}
        )
        assert response.status_code == 200, response.text
        results.append(response.json()["result"])
    assert results == ["credited", "duplicate"]
    assert box.balance_nanos(buyer) == 22 * NANOS
    future = moment + 3600
    v1 = sign_payload(body, box.double.webhook_secret, future).split(",")[1]
    response = box.http.post(
        "/api/v1/stripe/webhook", content=body, headers={"stripe-signature": f"t={future}=1,{v1}"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_signature"


@pytest.mark.parametrize(
    "change",
    [
        {"id": "evt_" + "a" * 300},
        {"id": 12345},
        {"type": ["checkout.session.completed"]},
        {"session": {"id": "cs_" + "b" * 300}},
        {"session": {"id": 12345}},
        {"session": {"payment_intent": "pi_" + "c" * 300}},
        {"session": {"setup_intent": {"id": ["seti_x"]}}},
    ],
    ids=[
        "long-event-id",
        "number-event-id",
        "list-type",
        "long-session-id",
        "number-session-id",
        "long-payment-intent",
        "list-setup-intent",
    ],
)
def test_a_signed_event_whose_ids_are_no_stripe_ids_is_400(
    box: BillingBox, change: dict[str, Any]
) -> None:
    """Stripe's ids are strings of at most 255 characters. A signed event with a longer one
    was a 500 on PostgreSQL (the column holds 255) and Stripe's retries for days; one that is
    a number or a list was read as its text, and a session so renamed, carrying the genuine
    session's signed metadata, was credited a second time. Only a holder of the signing secret
    can send one, but the SPEC's bad event is a 400 that changes nothing."""
    buyer = box.customer()
    session_id = box.start_topup(buyer, 20)
    event = box.double.complete(session_id)
    box.deliver(event)
    events_before = _event_count(box)
    forged = box.double.event("checkout.session.completed", box.double.session(session_id))
    forged["data"]["object"].update(change.pop("session", {}))
    forged.update(change)
    response = box.deliver(forged)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_event"
    if "type" in change:  # the message names what is wrong: the type, not an id
        assert "type" in response.json()["error"]["message"]
    assert _event_count(box) == events_before
    assert box.balance_nanos(buyer) == 20 * NANOS
