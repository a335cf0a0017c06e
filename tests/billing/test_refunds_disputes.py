"""Refunds and disputes made at Stripe take a top-up's credit back, once: signed events from the
double, repeated and out of order, against the running box (both engines)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from functools import partial
from typing import Any

import httpx
import pytest

from tests.billing.conftest import BillingBox, Customer
from tests.billing.test_webhooks import deliver_at_once
from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.pg_cluster import write_config_db
from tests.support import ANTHROPIC_LIST, CATALOG_SEEN_SEC, run_cli
from tests.timing import answers, seen_within

pytestmark = pytest.mark.timeout(120)
NANOS = 1_000_000_000
CENTS = 10_000_000  # nano-USD in a cent


def paid_topup(box: BillingBox, usd: int, buyer: Customer | None = None) -> tuple[Customer, str]:
    """An account whose top-up of `usd` was paid and credited; (the account, its session)."""
    buyer = buyer or box.customer()
    session_id = box.start_topup(buyer, usd)
    assert box.deliver(box.double.complete(session_id)).json()["result"] == "credited"
    return buyer, session_id


def results(box: BillingBox, events: list[dict[str, Any]]) -> list[str]:
    answers = [box.deliver(event) for event in events]
    assert [a.status_code for a in answers] == [200] * len(events), [a.text for a in answers]
    return [str(a.json()["result"]) for a in answers]


def reversals(box: BillingBox, buyer: Customer) -> list[tuple[Any, ...]]:
    return [row[1:] for row in box.ledger(buyer) if row[0] == "refund"]


def refunded_usd(box: BillingBox, buyer: Customer, session_id: str) -> Any:
    (uuid,) = box.query("SELECT uuid FROM payment WHERE stripe_session_id = ?", session_id)[0]
    (shown,) = [p for p in box.history(buyer) if p["id"] == uuid]
    assert shown["status"] == "completed"  # a refund is not a new status: the SPEC's stay
    return shown["refunded_usd"]


def test_a_full_refund_takes_the_credit_back_once(box: BillingBox) -> None:
    buyer, session_id = paid_topup(box, 20)
    charge_refunded, refund_created = box.double.refund(session_id)
    refund_id = refund_created["data"]["object"]["id"]
    assert results(box, [refund_created, refund_created]) == ["reversed", "duplicate"]
    assert results(box, [charge_refunded]) == ["unchanged"]  # the same refund, listed at Stripe
    assert box.balance_nanos(buyer) == 0
    assert reversals(box, buyer) == [(-20 * NANOS, f"stripe:refund:{refund_id}")]
    (reason,) = box.query(
        "SELECT reason FROM ledger_entry WHERE idempotency_key = ?", f"stripe:refund:{refund_id}"
    )[0]
    assert "refund" in reason and refund_id in reason and session_id in reason
    assert refunded_usd(box, buyer, session_id) == 20


def test_charge_refunded_alone_finds_the_refunds_at_stripe(box: BillingBox) -> None:
    buyer, session_id = paid_topup(box, 30)
    charge_refunded, refund_created = box.double.refund(session_id, amount=1_250)
    assert results(box, [charge_refunded]) == ["reversed"]
    assert (
        box.double.calls("GET", "/v1/refunds")[-1]["params"]["charge"]
        == (charge_refunded["data"]["object"]["id"])
    )
    assert results(box, [refund_created]) == ["unchanged"]
    assert box.balance_nanos(buyer) == 30 * NANOS - 1_250 * CENTS
    assert refunded_usd(box, buyer, session_id) == 12.5


def test_partial_refunds_add_up_and_never_past_the_credit(box: BillingBox) -> None:
    buyer, session_id = paid_topup(box, 50)
    first = box.double.refund(session_id, amount=1_000)
    second = box.double.refund(session_id, amount=1_500)
    # Stripe delivers in any order: the second refund's events before the first's
    assert results(box, [second[1], first[0], first[1], second[0]]) == [
        "reversed",
        "reversed",
        "unchanged",
        "unchanged",
    ]
    assert box.balance_nanos(buyer) == 25 * NANOS
    rest = box.double.refund(session_id)
    assert results(box, rest) == ["reversed", "unchanged"]
    assert box.balance_nanos(buyer) == 0
    assert refunded_usd(box, buyer, session_id) == 50
    assert sum(row[0] for row in reversals(box, buyer)) == -50 * NANOS


def test_a_refund_of_credit_already_spent_leaves_the_balance_below_zero(box: BillingBox) -> None:
    buyer, session_id = paid_topup(box, 20)
    spent = run_cli(box.config, "credit", buyer.email, "-15", "--reason", "spent")
    assert spent.returncode == 0, spent.stderr
    assert results(box, box.double.refund(session_id)) == ["reversed", "unchanged"]
    assert box.balance_nanos(buyer) == -15 * NANOS
    balance = box.get("/api/v1/customer/balance", buyer)
    assert balance.json()["credit_balance_usd"] == -15


def test_a_failed_refund_gives_back_and_a_late_older_event_changes_nothing(
    box: BillingBox,
) -> None:
    buyer, session_id = paid_topup(box, 20)
    _, created = box.double.refund(session_id, status="pending")
    refund = created["data"]["object"]
    failed = box.double.update_refund(refund["id"], "failed")
    assert results(box, [created]) == ["reversed"]
    assert box.balance_nanos(buyer) == 0
    assert results(box, [failed]) == ["reversed"]
    assert box.balance_nanos(buyer) == 20 * NANOS
    late = box.double.event("refund.updated", refund | {"status": "succeeded"})
    assert results(box, [late]) == ["unchanged"]  # failed is final
    assert box.balance_nanos(buyer) == 20 * NANOS
    assert refunded_usd(box, buyer, session_id) == 0


def test_the_charge_side_events_the_readme_lists_are_acted_on(box: BillingBox) -> None:
    """`charge.refund.updated` (Stripe's refund update, under the charge) and
    `charge.dispute.funds_reinstated` (a won dispute's funds given back), both in the README's
    list of events to subscribe to, do what their siblings do."""
    buyer, session_id = paid_topup(box, 20)
    _, created = box.double.refund(session_id, status="pending")
    refund = created["data"]["object"]
    assert results(box, [created]) == ["reversed"]
    failed = box.double.event("charge.refund.updated", refund | {"status": "failed"})
    assert results(box, [failed]) == ["reversed"]
    assert box.balance_nanos(buyer) == 20 * NANOS
    disputed = box.double.dispute(session_id)
    assert results(box, [disputed]) == ["reversed"]
    assert box.balance_nanos(buyer) == 0
    won = disputed["data"]["object"] | {"status": "won"}
    reinstated = box.double.event("charge.dispute.funds_reinstated", won)
    assert results(box, [reinstated]) == ["reversed"]
    assert box.balance_nanos(buyer) == 20 * NANOS
    assert refunded_usd(box, buyer, session_id) == 0


def test_a_failure_delivered_before_the_refund_moves_nothing(box: BillingBox) -> None:
    buyer, session_id = paid_topup(box, 20)
    _, created = box.double.refund(session_id, status="pending")
    failed = box.double.update_refund(created["data"]["object"]["id"], "failed")
    assert results(box, [failed, created]) == ["unchanged", "unchanged"]
    assert box.balance_nanos(buyer) == 20 * NANOS
    assert reversals(box, buyer) == []


def test_a_dispute_takes_the_credit_and_a_won_one_gives_it_back(box: BillingBox) -> None:
    buyer, session_id = paid_topup(box, 40)
    created = box.double.dispute(session_id)
    dispute_id = created["data"]["object"]["id"]
    assert results(box, [created, created]) == ["reversed", "duplicate"]
    assert box.balance_nanos(buyer) == 0
    assert refunded_usd(box, buyer, session_id) == 40
    closed = box.double.close_dispute(dispute_id, won=True)
    assert results(box, [closed, closed]) == ["reversed", "duplicate"]
    assert box.balance_nanos(buyer) == 40 * NANOS
    assert reversals(box, buyer) == [
        (-40 * NANOS, f"stripe:dispute:{dispute_id}"),
        (40 * NANOS, f"stripe:dispute:{dispute_id}:won"),
    ]
    assert refunded_usd(box, buyer, session_id) == 0
    reasons = box.query(
        "SELECT reason FROM ledger_entry WHERE user_id = ? AND kind = 'refund'", buyer.user_id
    )
    assert all("dispute" in r[0] and dispute_id in r[0] for r in reasons), reasons


def test_a_lost_dispute_stays_taken_whatever_the_order(box: BillingBox) -> None:
    buyer, session_id = paid_topup(box, 25)
    created = box.double.dispute(session_id)
    lost = box.double.close_dispute(created["data"]["object"]["id"], won=False)
    assert results(box, [lost, created, lost]) == ["reversed", "unchanged", "duplicate"]
    assert box.balance_nanos(buyer) == 0
    assert len(reversals(box, buyer)) == 1
    assert refunded_usd(box, buyer, session_id) == 25


def test_a_won_dispute_delivered_first_moves_nothing(box: BillingBox) -> None:
    buyer, session_id = paid_topup(box, 25)
    created = box.double.dispute(session_id)
    won = box.double.close_dispute(created["data"]["object"]["id"], won=True)
    assert results(box, [won, created]) == ["unchanged", "unchanged"]
    assert box.balance_nanos(buyer) == 25 * NANOS


def test_a_refund_after_a_dispute_does_not_take_twice(box: BillingBox) -> None:
    buyer, session_id = paid_topup(box, 30)
    created = box.double.dispute(session_id)
    assert results(box, [created]) == ["reversed"]
    assert results(box, box.double.refund(session_id)) == ["unchanged", "unchanged"]
    assert box.balance_nanos(buyer) == 0
    # the dispute closes in the merchant's favour, but the money went back by the refund
    won = box.double.close_dispute(created["data"]["object"]["id"], won=True)
    assert results(box, [won]) == ["unchanged"]
    assert box.balance_nanos(buyer) == 0
    assert sum(row[0] for row in reversals(box, buyer)) == -30 * NANOS


def test_a_trial_is_not_a_payment_and_stays(box: BillingBox) -> None:
    buyer = box.customer()
    setup = box.start_setup(buyer)
    assert box.deliver(box.double.complete(setup)).json()["result"] == "trial_granted"
    buyer, session_id = paid_topup(box, 10, buyer)
    assert results(box, box.double.refund(session_id)) == ["reversed", "unchanged"]
    assert box.balance_nanos(buyer) == 1 * NANOS  # the trial's dollar
    trial = [p for p in box.history(buyer) if p["kind"] == "trial"]
    assert [(p["status"], p["refunded_usd"]) for p in trial] == [("completed", 0)]


def test_a_charge_that_is_not_ours_is_acknowledged_and_writes_nothing(box: BillingBox) -> None:
    foreign = {
        "id": "re_test_someoneelse",
        "object": "refund",
        "amount": 5_000,
        "charge": "ch_test_someoneelse",
        "currency": "usd",
        "payment_intent": "pi_test_someoneelse",
        "status": "succeeded",
    }
    dispute = foreign | {"id": "du_test_someoneelse", "object": "dispute", "status": "lost"}
    events = [
        box.double.event("refund.created", foreign),
        box.double.event("charge.dispute.closed", dispute),
    ]
    before = box.query("SELECT COUNT(*) FROM ledger_entry")
    assert results(box, events) == ["unknown_charge", "unknown_charge"]
    assert box.query("SELECT COUNT(*) FROM ledger_entry") == before
    ids = tuple(e["id"] for e in events)
    assert box.query("SELECT id FROM stripe_event WHERE id IN (?, ?)", *ids) == []
    assert box.query("SELECT id FROM stripe_reversal WHERE id LIKE '%someoneelse'") == []


def test_a_refund_heard_of_before_its_sessions_credit_is_taken_once_credited(
    box: BillingBox,
) -> None:
    buyer = box.customer()
    session_id = box.start_topup(buyer, 20)
    completed = box.double.complete(session_id)  # delivered late: the box was down, say
    charge_refunded, refund_created = box.double.refund(session_id, amount=500)
    # the PaymentIntent is found at Stripe: the refund is kept, nothing is credited yet
    assert results(box, [refund_created, charge_refunded]) == ["unchanged", "unchanged"]
    assert (
        box.double.calls("GET", "/v1/checkout/sessions")[-1]["params"]["payment_intent"]
        == (refund_created["data"]["object"]["payment_intent"])
    )
    assert box.balance_nanos(buyer) == 0
    assert results(box, [completed, completed]) == ["credited", "duplicate"]
    assert box.balance_nanos(buyer) == 15 * NANOS
    refund_id = refund_created["data"]["object"]["id"]
    assert reversals(box, buyer) == [(-5 * NANOS, f"stripe:session:{session_id}:reversed")]
    (reason,) = box.query(
        "SELECT reason FROM ledger_entry WHERE user_id = ? AND kind = 'refund'", buyer.user_id
    )[0]
    assert f"refund {refund_id}" in reason
    assert refunded_usd(box, buyer, session_id) == 5


def test_a_charge_refunded_that_embeds_its_refunds_needs_no_call_to_stripe(
    box: BillingBox,
) -> None:
    buyer, session_id = paid_topup(box, 20)
    charge_refunded, refund_created = box.double.refund(session_id, amount=700)
    charge = charge_refunded["data"]["object"]
    listed = {"object": "list", "data": [refund_created["data"]["object"]], "has_more": False}
    older = box.double.event("charge.refunded", charge | {"refunds": listed})  # API < 2022-11-15
    calls = len(box.double.calls("GET", "/v1/refunds"))
    assert results(box, [older, refund_created]) == ["reversed", "unchanged"]
    assert len(box.double.calls("GET", "/v1/refunds")) == calls
    assert box.balance_nanos(buyer) == 13 * NANOS


def test_a_refunds_and_disputes_events_at_once_take_back_once(box: BillingBox) -> None:
    buyer, session_id = paid_topup(box, 60)
    charge_refunded, refund_created = box.double.refund(session_id, amount=2_000)
    dispute = box.double.dispute(session_id)
    events = [refund_created, charge_refunded, dispute, refund_created, dispute, charge_refunded]
    answers = asyncio.run(deliver_at_once(box, events))
    assert [a.status_code for a in answers] == [200] * len(events)
    assert box.balance_nanos(buyer) == 0  # the dispute takes the whole 60, the refund no more
    assert refunded_usd(box, buyer, session_id) == 60
    assert sum(row[0] for row in reversals(box, buyer)) == -60 * NANOS


def test_an_inquiry_takes_nothing_and_its_escalation_takes_the_credit(box: BillingBox) -> None:
    """Stripe withdraws no funds for an inquiry (`warning_*`): the credit stays until the issuer
    escalates it to a chargeback (`needs_response`, with charge.dispute.funds_withdrawn)."""
    buyer, session_id = paid_topup(box, 30)
    dispute = box.double.dispute(session_id)["data"]["object"]
    dispute_id = dispute["id"]
    inquiry = box.double.event(
        "charge.dispute.created", dispute | {"status": "warning_needs_response"}
    )
    reviewed = box.double.event(
        "charge.dispute.updated", dispute | {"status": "warning_under_review"}
    )
    assert results(box, [inquiry, reviewed]) == ["unchanged", "unchanged"]
    assert box.balance_nanos(buyer) == 30 * NANOS
    assert refunded_usd(box, buyer, session_id) == 0
    assert reversals(box, buyer) == []
    escalated = box.double.event("charge.dispute.funds_withdrawn", dispute)  # needs_response
    assert results(box, [escalated]) == ["reversed"]
    assert box.balance_nanos(buyer) == 0
    assert refunded_usd(box, buyer, session_id) == 30
    won = box.double.close_dispute(dispute_id, won=True)
    assert results(box, [won]) == ["reversed"]
    assert reversals(box, buyer) == [
        (-30 * NANOS, f"stripe:dispute:{dispute_id}"),
        (30 * NANOS, f"stripe:dispute:{dispute_id}:won"),
    ]


def test_a_closed_inquiry_gives_nothing_back_and_its_escalation_takes_the_credit(
    box: BillingBox,
) -> None:
    buyer, session_id = paid_topup(box, 30)
    dispute = box.double.dispute(session_id)["data"]["object"]
    inquiry = box.double.event(
        "charge.dispute.created", dispute | {"status": "warning_needs_response"}
    )
    closed = box.double.event("charge.dispute.closed", dispute | {"status": "warning_closed"})
    escalated = box.double.event("charge.dispute.funds_withdrawn", dispute)  # needs_response
    assert results(box, [inquiry, closed]) == ["unchanged", "unchanged"]
    assert box.balance_nanos(buyer) == 30 * NANOS
    # the issuer escalates the closed inquiry: the money is withdrawn, the credit goes with it
    assert results(box, [escalated]) == ["reversed"]
    assert box.balance_nanos(buyer) == 0
    assert refunded_usd(box, buyer, session_id) == 30


def test_an_inquirys_late_events_do_not_give_back_a_chargeback(box: BillingBox) -> None:
    buyer, session_id = paid_topup(box, 30)
    dispute = box.double.dispute(session_id)["data"]["object"]
    escalated = box.double.event("charge.dispute.funds_withdrawn", dispute)  # needs_response
    closed = box.double.event("charge.dispute.closed", dispute | {"status": "warning_closed"})
    inquiry = box.double.event(
        "charge.dispute.created", dispute | {"status": "warning_needs_response"}
    )
    # the chargeback's event first, the closed inquiry's (older) after it
    assert results(box, [escalated, closed, inquiry]) == ["reversed", "unchanged", "unchanged"]
    assert box.balance_nanos(buyer) == 0
    assert refunded_usd(box, buyer, session_id) == 30


def test_a_refund_of_a_credited_top_up_paid_before_payment_intents_were_recorded(
    box: BillingBox,
) -> None:
    """A top-up credited by a release that did not record PaymentIntents: its refund names a
    PaymentIntent no row has, and is found through Stripe's session lookup."""
    buyer, session_id = paid_topup(box, 40)
    write_config_db(
        box.config,
        "UPDATE payment SET payment_intent = NULL WHERE stripe_session_id = ?",
        (session_id,),
    )
    charge_refunded, refund_created = box.double.refund(session_id, amount=1_500)
    intent = refund_created["data"]["object"]["payment_intent"]
    assert results(box, [refund_created, charge_refunded]) == ["reversed", "unchanged"]
    assert box.double.calls("GET", "/v1/checkout/sessions")[-1]["params"]["payment_intent"] == (
        intent
    )
    assert box.balance_nanos(buyer) == 25 * NANOS
    assert refunded_usd(box, buyer, session_id) == 15
    rows = box.query("SELECT payment_intent FROM payment WHERE stripe_session_id = ?", session_id)
    assert rows == [(intent,)]  # recorded now: the next refund needs no lookup


def test_a_won_dispute_with_all_the_evidence_stripe_takes_gives_the_credit_back(
    box: BillingBox,
) -> None:
    """Every dispute event carries its evidence, whose text fields may hold 150,000
    characters in all: in Japanese or Chinese, escaped as Stripe's JSON may write them, the
    event is some 900 KB. The webhook read at most 256 KiB (413): the won dispute's credit was
    never given back, Stripe retrying it for days in vain."""
    buyer, session_id = paid_topup(box, 30)
    created = box.double.dispute(session_id)
    assert results(box, [created]) == ["reversed"]
    dispute_id = created["data"]["object"]["id"]
    with box.double.lock:  # the operator answers the dispute at length, in Japanese
        box.double.disputes[dispute_id]["evidence"]["uncategorized_text"] = "証拠" * 75_000
    won = box.double.close_dispute(dispute_id, won=True)
    body, _ = box.double.webhook(won)
    assert len(body) > 800_000
    assert results(box, [won]) == ["reversed"]
    assert box.balance_nanos(buyer) == 30 * NANOS
    won["padding"] = "x" * (1024 * 1024)  # past a mebibyte it is still a 413
    assert box.deliver(won).status_code == 413


@pytest.fixture(scope="module")
def upstream(box: BillingBox) -> Iterator[FakeOpenAI]:
    """A provider for the module's box: `fake/m`, 1,000 USD per 1M tokens in and out."""
    fake = FakeOpenAI().start()
    for args in (
        ("providers", "add", "fake", "--kind", "openai", "--base-url", fake.base_url,
         "--key", "sk-fake-key-0001"),
        ("models", "set", "fake/m", "--input-per-1m", "1000", "--output-per-1m", "1000"),
    ):  # fmt: skip
        made = run_cli(box.config, *args)
        assert made.returncode == 0, made.stderr
    set_at = time.monotonic()  # on PostgreSQL the box reloads its catalog every half second
    served = partial(box.http.get, "/v1/models/fake%2Fm", headers=ANTHROPIC_LIST)
    seen_within(answers(served), set_at, CATALOG_SEEN_SEC, "fake/m served")
    yield fake
    fake.stop()


def _answer(prompt: int, completion: int) -> bytes:
    """A whole chat completion with its usage, as the upstream writes it."""
    usage = {"prompt_tokens": prompt, "completion_tokens": completion,
             "total_tokens": prompt + completion}  # fmt: skip
    message = {"role": "assistant", "content": "A long answer."}
    choice = {"index": 0, "message": message, "finish_reason": "stop"}
    return json.dumps({"id": "chatcmpl-1", "object": "chat.completion", "created": 1,
                       "model": "m", "choices": [choice], "usage": usage}).encode()  # fmt: skip


def test_a_call_in_flight_when_its_credit_is_disputed_is_charged_in_full(
    box: BillingBox, upstream: FakeOpenAI
) -> None:
    """A dispute (or refund) that lands while a call runs takes the credit back, and the call
    is still charged what it cost: the balance ends where it would had the dispute come after
    the call. The settlement charged only what the account covered after the dispute, nothing,
    so a user could hold the whole top-up with calls in flight, dispute it (or have it
    refunded) and keep the answers for free."""
    buyer, session_id = paid_topup(box, 20)
    before = box.balance_nanos(buyer)
    upstream.push(Reply(raw=[_answer(11, 1000)], content_type="application/json",
                        pause_after=0))  # fmt: skip
    body = {"model": "fake/m", "max_tokens": 2000, "messages": [{"role": "user", "content": "hi"}]}
    answers: list[httpx.Response] = []
    call = threading.Thread(target=lambda: answers.append(
        box.post("/v1/chat/completions", buyer, json=body, timeout=60)))  # fmt: skip
    call.start()
    try:
        assert upstream.paused.wait(30), "the call never reached the upstream"
        assert results(box, [box.double.dispute(session_id)]) == ["reversed"]
    finally:
        upstream.resume.set()
        call.join(60)
    assert answers and answers[0].status_code == 200, answers and answers[0].text
    cost = 1011 * NANOS // 1000  # 1,011 tokens at 1,000 USD per 1M
    assert answers[0].json()["usage"]["cost_usd"] == 1.011
    assert box.balance_nanos(buyer) == before - 20 * NANOS - cost
    assert box.query('SELECT held_nanos FROM "user" WHERE id = ?', buyer.user_id) == [(0,)]
