"""Refunds and disputes the box does not apply in full reach the operator where money events
are seen: the audit log (client `stripe`), not only the access log. Signed events from the
Stripe double against the running box."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tests.billing.conftest import SECRET_KEY, WEBHOOK_SECRET, BillingBox
from tests.billing.test_refunds_disputes import paid_topup, results
from tests.billing.test_webhooks import deliver_at_once
from tests.support import run_cli

pytestmark = pytest.mark.timeout(120)
NANOS = 1_000_000_000


def stripe_entries(box: BillingBox) -> list[dict[str, Any]]:
    listed = run_cli(box.config, "audit", "--json")
    assert listed.returncode == 0, listed.stderr
    return [e for e in json.loads(listed.stdout) if e["client"] == "stripe"]


def test_a_refund_of_credit_a_dispute_already_took_is_an_audit_entry(box: BillingBox) -> None:
    """A chargeback took the top-up's credit back; the operator then refunds the same charge
    at Stripe: the customer got the money twice, the box takes nothing more (the credit is
    gone). That refused refund was only an access line."""
    buyer, session_id = paid_topup(box, 30)
    assert results(box, [box.double.dispute(session_id)]) == ["reversed"]
    before = len(stripe_entries(box))
    charge_refunded, refund_created = box.double.refund(session_id)
    assert results(box, [charge_refunded, refund_created]) == ["unchanged", "unchanged"]
    assert box.balance_nanos(buyer) == 0
    refund_id = refund_created["data"]["object"]["id"]
    (entry,) = stripe_entries(box)[before:]
    assert (entry["command"], entry["target"]) == ("stripe refund refused", refund_id)
    after = entry["after"]
    assert (after["asked_usd"], after["taken_back_usd"]) == ("30", "0")
    assert after["payment"] == session_id and after["account"] == buyer.uuid
    assert after["event"] == charge_refunded["id"]  # the event that first named it
    text = json.dumps(entry)
    assert SECRET_KEY not in text and WEBHOOK_SECRET not in text
    code, output = box.doctor()
    assert code == 0, output  # the chain holds with the webhook's entries


def test_a_refund_or_dispute_of_no_payment_here_is_an_audit_entry_once(box: BillingBox) -> None:
    foreign = {
        "id": "re_test_unknownpayment",
        "object": "refund",
        "amount": 5_000,
        "charge": "ch_test_unknownpayment",
        "currency": "usd",
        "payment_intent": "pi_test_unknownpayment",
        "status": "succeeded",
    }
    dispute = foreign | {"id": "du_test_unknownpayment", "object": "dispute", "status": "lost"}
    refund_event = box.double.event("refund.created", foreign)
    dispute_event = box.double.event("charge.dispute.closed", dispute)
    before = len(stripe_entries(box))
    assert results(box, [refund_event, refund_event, dispute_event]) == ["unknown_charge"] * 3
    found = stripe_entries(box)[before:]
    assert [(e["command"], e["target"]) for e in found] == [
        ("stripe refund refused", "re_test_unknownpayment"),
        ("stripe dispute refused", "du_test_unknownpayment"),
    ]  # a redelivery is no second entry
    assert found[0]["after"]["amount"] == "5000 usd" and found[0]["after"]["taken_back_usd"] == "0"
    assert "no top-up of this box" in found[0]["after"]["refused"]
    assert box.query("SELECT COUNT(*) FROM ledger_entry WHERE idempotency_key LIKE "
                     "'%unknownpayment%'") == [(0,)]  # fmt: skip


def test_one_refund_of_no_payment_here_delivered_at_once_is_one_audit_entry(
    box: BillingBox,
) -> None:
    """Stripe may deliver one event twice at once: the entry is still written once (on
    PostgreSQL both deliveries checked for it before either wrote it: two entries)."""
    foreign = {
        "id": "re_test_unknownatonce",
        "object": "refund",
        "amount": 700,
        "charge": "ch_test_unknownatonce",
        "currency": "usd",
        "payment_intent": "pi_test_unknownatonce",
        "status": "succeeded",
    }
    event = box.double.event("refund.created", foreign)
    before = len(stripe_entries(box))
    responses = asyncio.run(deliver_at_once(box, [event] * 6))
    assert [r.json()["result"] for r in responses] == ["unknown_charge"] * 6
    found = [(e["command"], e["target"]) for e in stripe_entries(box)[before:]]
    assert found == [("stripe refund refused", "re_test_unknownatonce")]


def test_a_refund_and_a_dispute_heard_before_the_credit_past_it_are_an_audit_entry(
    box: BillingBox,
) -> None:
    """The same two as above, heard of before the session's credit (the box was down): the
    credit takes back what it can at once, and the one it could not take was no entry, unlike
    when the credit came first."""
    buyer = box.customer()
    session_id = box.start_topup(buyer, 30)
    completed = box.double.complete(session_id)  # delivered late
    charge_refunded, refund_created = box.double.refund(session_id)
    dispute = box.double.dispute(session_id)
    before = len(stripe_entries(box))
    assert results(box, [refund_created, charge_refunded, dispute]) == ["unchanged"] * 3
    assert results(box, [completed, completed]) == ["credited", "duplicate"]
    assert box.balance_nanos(buyer) == 0
    (entry,) = stripe_entries(box)[before:]
    dispute_id = dispute["data"]["object"]["id"]
    assert (entry["command"], entry["target"]) == ("stripe dispute refused", dispute_id)
    after = entry["after"]
    assert (after["asked_usd"], after["taken_back_usd"]) == ("30", "0")
    assert after["payment"] == session_id and after["account"] == buyer.uuid
    assert after["event"] == completed["id"]  # the credit that could not cover it
    code, output = box.doctor()
    assert code == 0, output


def test_a_refund_applied_in_full_is_no_audit_entry(box: BillingBox) -> None:
    buyer, session_id = paid_topup(box, 20)
    before = len(stripe_entries(box))
    assert results(box, box.double.refund(session_id, amount=500)) == ["reversed", "unchanged"]
    assert box.balance_nanos(buyer) == 15 * NANOS
    assert stripe_entries(box)[before:] == []


def test_the_audit_table_says_why_not_created(box: BillingBox) -> None:
    """The table's `changes` column said "created" of a refused refund (an entry with no
    before): the operator reading `codelace-box audit` must see why it was not applied."""
    foreign = {
        "id": "re_test_tableview", "object": "refund", "amount": 700, "currency": "usd",
        "charge": "ch_test_tableview", "payment_intent": "pi_test_tableview",
        "status": "succeeded",
    }  # fmt: skip
    assert results(box, [box.double.event("refund.created", foreign)]) == ["unknown_charge"]
    listed = run_cli(box.config, "audit")
    assert listed.returncode == 0, listed.stderr
    (line,) = [row for row in listed.stdout.splitlines() if "re_test_tableview" in row]
    assert "not applied: no top-up of this box" in line and "created" not in line


def test_a_signed_refund_past_64_bits_is_refused_logged_and_an_audit_entry_once(
    box: BillingBox,
) -> None:
    """A signed event no Stripe sent (an amount past its 64-bit integers: whoever signed it
    holds stripe.webhook_secret) was a 400 in the access log and nothing else: Stripe's
    retries of a 400, or a forger's, went unseen."""
    buyer, session_id = paid_topup(box, 20)
    _, event = box.double.refund(session_id, amount=100)
    event["data"]["object"]["amount"] = 2**63
    refund_id = event["data"]["object"]["id"]
    before = len(stripe_entries(box))
    for _ in range(2):
        answer = box.deliver(event)
        assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid_event"
    (entry,) = stripe_entries(box)[before:]
    assert (entry["command"], entry["target"]) == ("stripe refund refused", refund_id)
    assert "past 64 bits" in entry["after"]["refused"] and entry["after"]["event"] == event["id"]
    box.server.wait_for_log(rf"Stripe event {event['id']} \(refund.created\) refused: .*64 bits")
    assert box.balance_nanos(buyer) == 20 * NANOS


def test_a_signed_refund_past_64_bits_delivered_at_once_is_one_audit_entry(
    box: BillingBox,
) -> None:
    """As above, delivered six times at once: one entry (on PostgreSQL each delivery checked
    for it before any wrote it)."""
    buyer, session_id = paid_topup(box, 20)
    _, event = box.double.refund(session_id, amount=100)
    event["data"]["object"]["amount"] = 2**63
    before = len(stripe_entries(box))
    responses = asyncio.run(deliver_at_once(box, [event] * 6))
    assert [r.status_code for r in responses] == [400] * 6
    found = [(e["command"], e["target"]) for e in stripe_entries(box)[before:]]
    assert found == [("stripe refund refused", event["data"]["object"]["id"])]
    assert box.balance_nanos(buyer) == 20 * NANOS


def test_a_paid_top_up_credited_nothing_is_an_audit_entry_once(box: BillingBox) -> None:
    """Stripe took the customer's money but the box credited nothing (the paid amount does not
    read in the top-up's currency): the payment stays pending and only the error log said so,
    where a refund the box does not apply is an audit entry. Now it is one too, once per
    event, and the genuine amount delivered after still credits."""
    buyer = box.customer()
    session_id = box.start_topup(buyer, 20)
    box.double.complete(session_id)
    other_currency = box.double.session(session_id) | {"currency": "eur"}
    event = box.double.event("checkout.session.completed", other_currency)
    before = len(stripe_entries(box))
    assert results(box, [event, event]) == ["amount_mismatch", "duplicate"]
    (entry,) = stripe_entries(box)[before:]
    assert (entry["command"], entry["target"]) == ("stripe top-up refused", session_id)
    after = entry["after"]
    assert after["event"] == event["id"] and after["amount"] == "2000 eur"
    assert after["account"] == buyer.uuid and "nothing credited" in after["refused"]
    assert box.balance_nanos(buyer) == 0
    text = json.dumps(entry)
    assert SECRET_KEY not in text and WEBHOOK_SECRET not in text
    genuine = box.double.event("checkout.session.completed", box.double.session(session_id))
    assert results(box, [genuine]) == ["credited"]
    assert len(stripe_entries(box)) == before + 1
