"""What a paid session credits when Stripe's event disagrees with the payment the box recorded:
never more than was paid (`amount_total` in the session's currency), never more than was asked
for, nothing at all when the paid amount cannot be read in the payment's currency, and the
recorded amount when the event leaves the total out."""

from __future__ import annotations

from typing import Any

import pytest

from tests.billing.conftest import BillingBox, Customer

pytestmark = pytest.mark.timeout(120)
NANOS = 1_000_000_000
CENT = NANOS // 100


def paid_event(box: BillingBox, session_id: str, **changes: Any) -> dict[str, Any]:
    """checkout.session.completed for a session the customer paid, with fields altered."""
    box.double.complete(session_id)
    return box.double.event("checkout.session.completed", box.double.session(session_id) | changes)


def credited(box: BillingBox, buyer: Customer) -> list[int]:
    return [row[1] for row in box.ledger(buyer) if row[0] == "topup"]


def test_a_session_paid_below_the_recorded_amount_credits_what_was_paid(box: BillingBox) -> None:
    """E.g. a discount at Stripe: the balance gets the 15.25 paid, not the 20 asked for."""
    buyer = box.customer()
    session_id = box.start_topup(buyer, 20)
    response = box.deliver(paid_event(box, session_id, amount_total=1525))
    assert response.status_code == 200, response.text
    assert response.json()["result"] == "credited"
    assert credited(box, buyer) == [1525 * CENT]
    assert box.balance_nanos(buyer) == 1525 * CENT
    [payment] = box.history(buyer)
    assert (payment["status"], payment["amount_usd"]) == ("completed", 15.25)


def test_a_session_paid_above_the_recorded_amount_credits_the_recorded_amount(
    box: BillingBox,
) -> None:
    buyer = box.customer()
    session_id = box.start_topup(buyer, 20)
    assert box.deliver(paid_event(box, session_id, amount_total=999_900)).status_code == 200
    assert credited(box, buyer) == [20 * NANOS]
    assert box.history(buyer)[0]["amount_usd"] == 20


def test_a_session_needing_no_payment_credits_nothing(box: BillingBox) -> None:
    """A 100% discount: Checkout completes with `no_payment_required` and a zero total."""
    buyer = box.customer()
    session_id = box.start_topup(buyer, 20)
    event = paid_event(box, session_id, amount_total=0, payment_status="no_payment_required")
    assert box.deliver(event).json()["result"] == "credited"
    assert box.balance_nanos(buyer) == 0
    [payment] = box.history(buyer)
    assert (payment["status"], payment["amount_usd"]) == ("completed", 0)


@pytest.mark.parametrize(
    "changes",
    [{"currency": "eur"}, {"amount_total": "2000"}, {"amount_total": -5}, {"amount_total": 9.5}],
)
def test_an_unreadable_paid_amount_credits_nothing_and_stays_pending(
    box: BillingBox, changes: dict[str, Any]
) -> None:
    buyer = box.customer()
    session_id = box.start_topup(buyer, 20)
    response = box.deliver(paid_event(box, session_id, **changes))
    assert response.status_code == 200, response.text
    assert response.json()["result"] == "amount_mismatch"
    assert box.balance_nanos(buyer) == 0
    assert box.payment_status(session_id) == "pending"
    # The genuine event, delivered afterwards, still credits the payment once.
    genuine = box.double.event("checkout.session.completed", box.double.session(session_id))
    assert box.deliver(genuine).json()["result"] == "credited"
    assert box.balance_nanos(buyer) == 20 * NANOS


@pytest.mark.parametrize("left_out", [("amount_total",), ("amount_total", "currency")])
def test_a_paid_event_without_its_total_credits_the_recorded_amount(
    box: BillingBox, left_out: tuple[str, ...]
) -> None:
    """A signed event for one of the box's sessions that leaves the total out (a pared-down
    delivery) still credits the top-up: the amount the box recorded, once."""
    buyer = box.customer()
    session_id = box.start_topup(buyer, 20)
    box.double.complete(session_id)
    session = {k: v for k, v in box.double.session(session_id).items() if k not in left_out}
    event = box.double.event("checkout.session.completed", session)
    assert box.deliver(event).json()["result"] == "credited"
    assert box.deliver(event).json()["result"] == "duplicate"
    assert credited(box, buyer) == [20 * NANOS]
    assert box.payment_status(session_id) == "completed"


def test_a_discounted_credit_is_not_raised_by_a_later_full_event(box: BillingBox) -> None:
    buyer = box.customer()
    session_id = box.start_topup(buyer, 20)
    assert box.deliver(paid_event(box, session_id, amount_total=1000)).json()["result"] == (
        "credited"
    )
    full = box.double.event(
        "checkout.session.async_payment_succeeded", box.double.session(session_id)
    )
    assert box.deliver(full).json()["result"] == "already_credited"
    assert credited(box, buyer) == [10 * NANOS]
    assert box.payment_status(session_id) == "completed"


def localized(session: dict[str, Any], charged: int, usd_total: int) -> dict[str, Any]:
    """The session as an endpoint on an API version before 2025-03-31 sees it when Adaptive
    Pricing let the customer pay in euros: `currency` and `amount_total` are what the customer
    was charged, the integration's own amount is under `currency_conversion`."""
    conversion = {
        "amount_subtotal": usd_total,
        "amount_total": usd_total,
        "fx_rate": "0.9215",
        "source_currency": "usd",
    }
    return session | {"currency": "eur", "amount_total": charged, "currency_conversion": conversion}


@pytest.mark.parametrize(("charged", "usd_total", "credit"), [(1843, 2000, 20), (1382, 1500, 15)])
def test_a_session_paid_in_a_local_currency_credits_its_usd_amount(
    box: BillingBox, charged: int, usd_total: int, credit: int
) -> None:
    """Adaptive Pricing (on by default) lets a customer abroad pay a USD session in their own
    currency; a webhook endpoint pinned to an API version older than 2025-03-31.basil gets
    the session in the customer's currency, with the USD amount in `currency_conversion`. The
    customer paid: the top-up is credited (a discount still credits only what was paid)."""
    buyer = box.customer()
    session_id = box.start_topup(buyer, 20)
    box.double.complete(session_id)
    event = box.double.event(
        "checkout.session.completed", localized(box.double.session(session_id), charged, usd_total)
    )
    event["api_version"] = "2024-06-20"
    response = box.deliver(event)
    assert response.status_code == 200, response.text
    assert response.json()["result"] == "credited"
    assert credited(box, buyer) == [credit * NANOS]
    assert box.payment_status(session_id) == "completed"


def test_a_conversion_from_another_currency_still_credits_nothing(box: BillingBox) -> None:
    buyer = box.customer()
    session_id = box.start_topup(buyer, 20)
    box.double.complete(session_id)
    session = localized(box.double.session(session_id), 1843, 2000)
    session["currency_conversion"]["source_currency"] = "gbp"
    response = box.deliver(box.double.event("checkout.session.completed", session))
    assert response.json()["result"] == "amount_mismatch"
    assert box.balance_nanos(buyer) == 0
    assert box.payment_status(session_id) == "pending"


def test_a_session_paid_in_a_local_currency_on_a_current_api_version_credits_once(
    box: BillingBox,
) -> None:
    """From 2025-03-31.basil on, a localized session keeps its own currency and amount, the
    customer's under `presentment_details`: read as it is."""
    buyer = box.customer()
    session_id = box.start_topup(buyer, 20)
    box.double.complete(session_id)
    presented = {"presentment_amount": 1843, "presentment_currency": "eur"}
    session = box.double.session(session_id) | {"presentment_details": presented}
    assert box.deliver(box.double.event("checkout.session.completed", session)).json() == {
        "received": True,
        "result": "credited",
    }
    assert credited(box, buyer) == [20 * NANOS]


INT64_MAX = 2**63 - 1


@pytest.mark.parametrize("where", ["amount_total", "currency_conversion"])
def test_a_paid_amount_past_int64_is_a_bad_event(box: BillingBox, where: str) -> None:
    """Stripe's amounts are 64-bit integers: a signed session with a total past that is no
    session Stripe made. It credited the whole top-up (read as paid above the recorded
    amount); it is refused as a refund or dispute with such an amount is (400 invalid_event),
    before anything is written, and the genuine event still credits once."""
    buyer = box.customer()
    session_id = box.start_topup(buyer, 20)
    box.double.complete(session_id)
    session = box.double.session(session_id)
    if where == "amount_total":
        session |= {"amount_total": INT64_MAX + 1}
    else:
        session = localized(session, 1843, 2000)
        session["currency_conversion"]["amount_total"] = 2**70
    event = box.double.event("checkout.session.completed", session)
    answer = box.deliver(event)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "invalid_event"
    assert "past 64 bits" in answer.json()["error"]["message"]
    box.server.wait_for_log(f"Session '{session_id}' has an amount past 64 bits: no session")
    assert box.query("SELECT id FROM stripe_event WHERE id = ?", event["id"]) == []
    assert (box.balance_nanos(buyer), box.payment_status(session_id)) == (0, "pending")
    genuine = box.double.event("checkout.session.completed", box.double.session(session_id))
    assert box.deliver(genuine).json()["result"] == "credited"
    assert credited(box, buyer) == [20 * NANOS]


def test_an_int64_total_whose_nanos_no_column_holds_credits_at_most_the_recorded_amount(
    box: BillingBox,
) -> None:
    """Within 64 bits but past them in nano-USD (x 10^7 a cent): capped, as a refund's is."""
    buyer = box.customer()
    session_id = box.start_topup(buyer, 20)
    assert box.deliver(paid_event(box, session_id, amount_total=INT64_MAX)).json() == {
        "received": True,
        "result": "credited",
    }
    assert credited(box, buyer) == [20 * NANOS]
    assert box.history(buyer)[0]["amount_usd"] == 20
