"""A payer's or a shuffled delivery's attempts to keep credit Stripe took back: refunds and
disputes heard of before the credit, a dispute won before the credit, a second dispute after a
won one, a lost dispute won or lost on appeal, partial refunds in several events delivered
twice; against the running box with signed events from the double."""

from __future__ import annotations

import pytest

from tests.billing.conftest import BillingBox
from tests.billing.test_refunds_disputes import paid_topup, refunded_usd, results, reversals

pytestmark = pytest.mark.timeout(120)
NANOS = 1_000_000_000


def test_a_dispute_taken_before_the_credit_and_won_gives_back_once(box: BillingBox) -> None:
    buyer = box.customer()
    session_id = box.start_topup(buyer, 30)
    completed = box.double.complete(session_id)
    created = box.double.dispute(session_id)
    assert results(box, [created]) == ["unchanged"]  # nothing credited yet: nothing to take
    assert results(box, [completed]) == ["credited"]
    assert box.balance_nanos(buyer) == 0  # credited, and the chargeback taken at once
    won = box.double.close_dispute(created["data"]["object"]["id"], won=True)
    assert results(box, [won, won, created, completed]) == [
        "reversed", "duplicate", "duplicate", "duplicate"]  # fmt: skip
    assert box.balance_nanos(buyer) == 30 * NANOS
    assert sum(row[0] for row in reversals(box, buyer)) == 0
    assert refunded_usd(box, buyer, session_id) == 0


def test_a_dispute_won_before_the_credit_takes_nothing(box: BillingBox) -> None:
    buyer = box.customer()
    session_id = box.start_topup(buyer, 30)
    completed = box.double.complete(session_id)
    created = box.double.dispute(session_id)
    won = box.double.close_dispute(created["data"]["object"]["id"], won=True)
    assert results(box, [won, created, completed]) == ["unchanged", "unchanged", "credited"]
    assert box.balance_nanos(buyer) == 30 * NANOS
    assert reversals(box, buyer) == []


def test_a_second_dispute_after_a_won_one_takes_the_credit_again(box: BillingBox) -> None:
    buyer, session_id = paid_topup(box, 25)
    first = box.double.dispute(session_id)
    won = box.double.close_dispute(first["data"]["object"]["id"], won=True)
    second = box.double.dispute(session_id)
    assert results(box, [first, won, second, won, first]) == [
        "reversed", "reversed", "reversed", "duplicate", "duplicate"]  # fmt: skip
    assert box.balance_nanos(buyer) == 0
    assert refunded_usd(box, buyer, session_id) == 25


def test_a_lost_dispute_won_on_appeal_gives_the_credit_back_once(box: BillingBox) -> None:
    """Stripe's appeals (API version 2026-10-28.endive, the pinned library's): a lost dispute
    the business appeals goes appeal_needs_response, appeal_under_review, then won (the funds
    come back to the operator, the cardholder pays again) or lost. Won gives the credit back,
    as any won dispute does; the older events delivered after it change nothing."""
    buyer, session_id = paid_topup(box, 25)
    created = box.double.dispute(session_id)
    dispute_id = created["data"]["object"]["id"]
    lost = box.double.close_dispute(dispute_id, won=False)
    appealed = box.double.appeal_dispute(dispute_id, "appeal_needs_response")
    reviewed = box.double.appeal_dispute(dispute_id, "appeal_under_review")
    won = box.double.close_dispute(dispute_id, won=True)
    assert results(box, [created, lost, appealed]) == ["reversed", "unchanged", "unchanged"]
    assert box.balance_nanos(buyer) == 0  # under appeal the funds stay the cardholder's
    assert results(box, [won, reviewed, won]) == ["reversed", "unchanged", "duplicate"]
    assert box.balance_nanos(buyer) == 25 * NANOS
    assert reversals(box, buyer) == [
        (-25 * NANOS, f"stripe:dispute:{dispute_id}"),
        (25 * NANOS, f"stripe:dispute:{dispute_id}:won"),
    ]
    assert refunded_usd(box, buyer, session_id) == 0


def test_an_appeal_lost_again_stays_taken(box: BillingBox) -> None:
    buyer, session_id = paid_topup(box, 25)
    created = box.double.dispute(session_id)
    dispute_id = created["data"]["object"]["id"]
    lost = box.double.close_dispute(dispute_id, won=False)
    appealed = box.double.appeal_dispute(dispute_id, "appeal_under_review")
    lost_again = box.double.close_dispute(dispute_id, won=False)
    assert results(box, [lost_again, appealed, created, lost]) == ["reversed"] + ["unchanged"] * 3
    assert box.balance_nanos(buyer) == 0
    assert refunded_usd(box, buyer, session_id) == 25


def test_a_dispute_prevented_by_refunding_the_cardholder_stays_taken(box: BillingBox) -> None:
    """Stripe's dispute prevention (status `prevented`, API 2025-08-27.basil on) either blocks
    a dispute (no funds move: the credit comes back, as for a won one) or resolves it by giving
    the cardholder their money (Visa's RDR: the dispute's balance transaction withdraws it). The
    latter keeps the credit taken, in whatever order its events arrive, and so does one first
    heard of as prevented without the withdrawal (a delivery before its funds_withdrawn)."""
    buyer, session_id = paid_topup(box, 25)
    created = box.double.dispute(session_id)
    resolved = box.double.prevent_dispute(created["data"]["object"]["id"], refunded=True)
    assert results(box, [created, resolved, created]) == ["reversed", "unchanged", "duplicate"]
    assert box.balance_nanos(buyer) == 0
    assert refunded_usd(box, buyer, session_id) == 25
    other, other_session = paid_topup(box, 25)
    created = box.double.dispute(other_session)
    dispute_id = created["data"]["object"]["id"]
    blocked = box.double.prevent_dispute(dispute_id, refunded=False)
    assert results(box, [created, blocked]) == ["reversed", "reversed"]
    assert box.balance_nanos(other) == 25 * NANOS  # blocked: the operator kept the money
    withdrawn = box.double.prevent_dispute(dispute_id, refunded=True)
    late = box.double.event("charge.dispute.updated", blocked["data"]["object"])
    assert results(box, [withdrawn, late]) == ["reversed", "unchanged"]
    assert box.balance_nanos(other) == 0
    assert refunded_usd(box, other, other_session) == 25
    # a resolution whose event does not show the withdrawal (the refund is the resolution)
    third, third_session = paid_topup(box, 25)
    created = box.double.dispute(third_session)
    unshown = box.double.prevent_dispute(created["data"]["object"]["id"], True, withdrawn=False)
    assert results(box, [created, unshown]) == ["reversed", "unchanged"]
    assert box.balance_nanos(third) == 0


def test_partial_refunds_delivered_twice_and_out_of_order_take_each_once(
    box: BillingBox,
) -> None:
    buyer, session_id = paid_topup(box, 20)
    first = box.double.refund(session_id, amount=300)
    second = box.double.refund(session_id, amount=450)
    third = box.double.refund(session_id, amount=250)
    events = [third[1], first[1], *third, second[1], *first, *second]  # refund.created first
    # charge.refunded lists the charge's refunds at Stripe: the third's takes the second's
    assert results(box, events) == ["reversed", "reversed", "reversed", "duplicate",
                                    "unchanged", "unchanged", "duplicate", "unchanged",
                                    "duplicate"]  # fmt: skip
    assert box.balance_nanos(buyer) == 10 * NANOS
    assert refunded_usd(box, buyer, session_id) == 10
    assert sorted(row[0] for row in reversals(box, buyer)) == [
        -450 * NANOS // 100, -300 * NANOS // 100, -250 * NANOS // 100]  # fmt: skip


def test_a_refund_that_failed_before_the_credit_takes_nothing_after_it(box: BillingBox) -> None:
    buyer = box.customer()
    session_id = box.start_topup(buyer, 20)
    completed = box.double.complete(session_id)
    charge_refunded, created = box.double.refund(session_id, status="pending")
    failed = box.double.update_refund(created["data"]["object"]["id"], "failed")
    assert results(box, [created, failed]) == ["unchanged", "unchanged"]
    assert results(box, [completed, charge_refunded, created]) == [
        "credited", "unchanged", "duplicate"]  # fmt: skip
    assert box.balance_nanos(buyer) == 20 * NANOS
    assert reversals(box, buyer) == []


def test_a_setup_sessions_trial_is_no_charge_a_refund_could_name(box: BillingBox) -> None:
    """A refund event naming the setup session's SetupIntent (no PaymentIntent a top-up paid)
    finds nothing to take: the trial stays."""
    buyer = box.customer()
    setup_id = box.start_setup(buyer)
    assert box.deliver(box.double.complete(setup_id)).json()["result"] == "trial_granted"
    trial = box.balance_nanos(buyer)
    assert trial > 0
    intent = box.double.sessions[setup_id]["setup_intent"]
    refund = {"id": "re_trial", "object": "refund", "amount": trial // 10**7, "currency": "usd",
              "payment_intent": intent, "status": "succeeded", "charge": "ch_none"}  # fmt: skip
    assert results(box, [box.double.event("refund.created", refund)]) == ["unknown_charge"]
    assert box.balance_nanos(buyer) == trial
