"""How much a refund or dispute takes back when its amount is not plainly the top-up's: one in
the customer's currency (Adaptive Pricing) takes the refunded share of the charge, in integers,
rounded up to the next nano-USD and never past the credit; one signed with an amount no
integer column holds is refused as a bad event and changes nothing (both engines)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.billing.conftest import BillingBox, Customer
from tests.billing.test_refunds_disputes import paid_topup, refunded_usd, results, reversals

pytestmark = pytest.mark.timeout(120)
NANOS = 1_000_000_000
INT64_MAX = 2**63 - 1
OLD_API = "2024-06-20"  # an endpoint pinned before 2025-03-31.basil: objects in the local currency


def share(credit_nanos: int, refunded: int, charged: int) -> int:
    """refunded / charged of the credit, rounded up (the operator's favour)."""
    return -(-credit_nanos * refunded // charged)


def localized_topup(box: BillingBox, usd: int, eur_cents: int) -> tuple[Customer, str]:
    """A top-up of `usd` the customer paid as `eur_cents` euro cents (Adaptive Pricing)."""
    buyer, session_id = paid_topup(box, usd)
    box.double.localize(session_id, "eur", eur_cents)
    return buyer, session_id


def in_euros(event: dict[str, Any], amount: int) -> dict[str, Any]:
    """A refund event as an endpoint on an older API version gets it: in the charge's euros."""
    refund = event["data"]["object"] | {"amount": amount, "currency": "eur"}
    older = event | {"data": {"object": refund}, "api_version": OLD_API}
    return older


WHOLE = "taking back the whole top-up"


def test_a_partial_refund_in_the_customers_currency_takes_its_share(box: BillingBox) -> None:
    logged = box.server.log_text().count(WHOLE)
    buyer, session_id = localized_topup(box, 20, 1843)
    _, created = box.double.refund(session_id, amount=1000)  # the double's USD cents
    assert results(box, [in_euros(created, 922)]) == ["reversed"]
    taken = share(20 * NANOS, 922, 1843)
    assert taken == 10_005_425_936  # 10.005425935..., rounded up
    assert box.balance_nanos(buyer) == 20 * NANOS - taken
    refund_id = created["data"]["object"]["id"]
    assert reversals(box, buyer) == [(-taken, f"stripe:refund:{refund_id}")]
    charge_id = created["data"]["object"]["charge"]
    assert box.double.calls("GET", f"/v1/charges/{charge_id}")  # its amount in euros
    assert box.server.log_text().count(WHOLE) == logged


def test_partial_refunds_in_the_customers_currency_add_up_to_the_whole_credit(
    box: BillingBox,
) -> None:
    buyer, session_id = localized_topup(box, 30, 2765)
    _, first = box.double.refund(session_id, amount=1000)
    _, second = box.double.refund(session_id, amount=2000)
    assert results(box, [in_euros(first, 1001), in_euros(second, 1764)]) == [
        "reversed",
        "reversed",
    ]
    assert box.balance_nanos(buyer) == 0  # 1001 + 1764 = 2765: all of it, no nano left
    assert refunded_usd(box, buyer, session_id) == 30


def test_a_dispute_of_a_localized_charge_takes_the_credit_not_the_whole_account(
    box: BillingBox,
) -> None:
    buyer, session_id = localized_topup(box, 25, 2304)
    other, _ = paid_topup(box, 10, box.customer())
    dispute = box.double.dispute(session_id)  # in euros, as the card network disputes it
    assert dispute["data"]["object"]["currency"] == "eur"
    assert results(box, [dispute]) == ["reversed"]
    assert box.balance_nanos(buyer) == 0
    assert refunded_usd(box, buyer, session_id) == 25
    won = box.double.close_dispute(dispute["data"]["object"]["id"], won=True)
    partial = box.double.dispute(session_id, amount=576)  # a second one, of part of it
    assert results(box, [won, partial]) == ["reversed", "reversed"]
    assert box.balance_nanos(buyer) == 25 * NANOS - share(25 * NANOS, 576, 2304)
    assert box.balance_nanos(other) == 10 * NANOS


def test_a_charge_refunded_event_in_the_customers_currency_needs_no_charge_lookup(
    box: BillingBox,
) -> None:
    buyer, session_id = localized_topup(box, 20, 1843)
    charge_refunded, created = box.double.refund(session_id, amount=1000)
    charge = charge_refunded["data"]["object"]
    refund = created["data"]["object"] | {"amount": 461, "currency": "eur"}
    listed = {"object": "list", "data": [refund], "has_more": False}
    older = charge | {"amount": 1843, "currency": "eur", "refunds": listed}
    older.pop("presentment_details")
    event = box.double.event("charge.refunded", older) | {"api_version": OLD_API}
    assert results(box, [event]) == ["reversed"]
    assert box.balance_nanos(buyer) == 20 * NANOS - share(20 * NANOS, 461, 1843)
    assert not box.double.calls("GET", f"/v1/charges/{charge['id']}")


def test_a_refund_in_a_currency_the_charge_was_not_made_in_takes_the_whole_top_up(
    box: BillingBox,
) -> None:
    """Nothing to read the share against: the whole top-up, and the error log says so."""
    logged = box.server.log_text().count(WHOLE)
    buyer, session_id = localized_topup(box, 20, 1843)
    _, created = box.double.refund(session_id, amount=1000)
    event = in_euros(created, 500)
    event["data"]["object"]["currency"] = "gbp"
    assert results(box, [event]) == ["reversed"]
    assert box.balance_nanos(buyer) == 0
    assert box.server.log_text().count(WHOLE) == logged + 1


@pytest.mark.parametrize("kind", ["refund", "dispute"])
def test_an_amount_past_int64_is_a_bad_event_that_changes_nothing(
    box: BillingBox, kind: str
) -> None:
    buyer, session_id = paid_topup(box, 20)
    if kind == "refund":
        _, event = box.double.refund(session_id, amount=100)
    else:
        event = box.double.dispute(session_id)
    event["data"]["object"]["amount"] = INT64_MAX + 1
    before = box.query("SELECT COUNT(*) FROM ledger_entry")
    answer = box.deliver(event)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "invalid_event"
    assert box.query("SELECT COUNT(*) FROM ledger_entry") == before
    assert box.query("SELECT id FROM stripe_event WHERE id = ?", event["id"]) == []
    assert box.query(
        "SELECT COUNT(*) FROM stripe_reversal WHERE payment_id IN (SELECT id FROM "
        "payment WHERE stripe_session_id = ?)",
        session_id,
    ) == [(0,)]
    assert box.balance_nanos(buyer) == 20 * NANOS


def test_an_int64_amount_whose_nanos_no_column_holds_takes_at_most_the_credit(
    box: BillingBox,
) -> None:
    buyer, session_id = paid_topup(box, 20)
    _, event = box.double.refund(session_id, amount=100)
    event["data"]["object"]["amount"] = INT64_MAX  # x 10^7 nano-USD a cent: past any column
    assert results(box, [event]) == ["reversed"]
    assert box.balance_nanos(buyer) == 0
    assert refunded_usd(box, buyer, session_id) == 20


@pytest.mark.parametrize("field", ["amount", "presentment_amount"])
def test_a_charge_amount_past_int64_is_a_bad_event_too(box: BillingBox, field: str) -> None:
    """The charge an event embeds is of the event too: its amount (on older API versions, or
    its presentment amount on current ones) past 64 bits is no charge Stripe made. Read as
    the share's divisor it made the refund take back a nano-USD of the 20 USD."""
    buyer, session_id = localized_topup(box, 20, 1843)
    charge_refunded, created = box.double.refund(session_id, amount=1000)
    charge = charge_refunded["data"]["object"]
    refund = created["data"]["object"] | {"amount": 1843, "currency": "eur"}
    listed = {"object": "list", "data": [refund], "has_more": False}
    if field == "amount":
        embedded = charge | {"amount": INT64_MAX + 1, "currency": "eur", "refunds": listed}
        embedded.pop("presentment_details")
    else:
        presented = {"presentment_amount": INT64_MAX + 1, "presentment_currency": "eur"}
        embedded = charge | {"presentment_details": presented, "refunds": listed}
    event = box.double.event("charge.refunded", embedded)
    answer = box.deliver(event)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "invalid_event"
    assert box.query("SELECT id FROM stripe_event WHERE id = ?", event["id"]) == []
    assert reversals(box, buyer) == []
    assert box.balance_nanos(buyer) == 20 * NANOS
