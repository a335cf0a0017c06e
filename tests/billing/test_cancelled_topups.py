"""A top-up the user walked away from: its Checkout Session lives 30 minutes (not Stripe's
default 24 hours), and coming back through Stripe's cancel link expires it at Stripe and marks
the payment expired, as the `checkout.session.expired` webhook does (one code path). Before,
a cancelled top-up stayed `pending` in every payment history for up to a day. A session paid
meanwhile stays paid: Stripe refuses to expire a complete session, and the payment is left to
the completed event."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.billing.conftest import BillingBox, Customer
from tests.fakes.stripe_wire import StripeApiError

pytestmark = pytest.mark.timeout(120)


def started(box: BillingBox, buyer: Customer, amount: Any = 15) -> dict[str, Any]:
    """A top-up just started: its session as Stripe holds it."""
    return box.double.session(box.start_topup(buyer, amount))


def leave(box: BillingBox, session: dict[str, Any]) -> str:
    """The user leaves Stripe's page: the browser opens the session's cancel link; its text."""
    link = str(session["cancel_url"])
    assert link.startswith(box.server.base_url + "/billing/cancel?"), link
    page = box.http.get(link.removeprefix(box.server.base_url))
    assert page.status_code == 200, page.text
    return page.text


def expire_calls(box: BillingBox, session: dict[str, Any]) -> int:
    return len(box.double.calls("POST", f"/v1/checkout/sessions/{session['id']}/expire"))


def test_a_top_up_session_expires_after_half_an_hour_not_a_day(box: BillingBox) -> None:
    before = int(time.time())
    session = started(box, box.customer())
    call = box.double.calls("POST", "/v1/checkout/sessions")[-1]
    assert int(call["params"]["expires_at"]) == session["expires_at"]
    assert before + 45 * 60 <= session["expires_at"] <= int(time.time()) + 60 * 60


def test_leaving_the_checkout_expires_the_session_and_the_payment(box: BillingBox) -> None:
    buyer = box.customer()
    session = started(box, buyer)
    text = leave(box, session)
    assert "Payment cancelled" in text and "Nothing was charged" in text
    assert box.double.session(session["id"])["status"] == "expired"
    assert box.payment_status(session["id"]) == "expired"
    [payment] = box.history(buyer)
    assert (payment["kind"], payment["status"]) == ("topup", "expired")
    leave(box, session)  # again (a reload): nothing more to ask Stripe
    assert expire_calls(box, session) == 1
    event = box.double.event("checkout.session.expired", box.double.session(session["id"]))
    delivered = box.deliver(event)  # Stripe's own event follows: the same effect, once
    assert delivered.status_code == 200, delivered.text
    assert delivered.json()["result"] == "unchanged"
    assert box.payment_status(session["id"]) == "expired"
    assert box.balance_nanos(buyer) == 0


def test_a_session_paid_before_the_user_came_back_stays_paid(box: BillingBox) -> None:
    """Paid in one tab, "back" in another: Stripe refuses to expire a complete session (its
    400), the payment is not marked expired, and the completed event credits it."""
    buyer = box.customer()
    session = started(box, buyer, 20)
    completed = box.double.complete(session["id"])
    text = leave(box, session)
    assert "Nothing was charged" not in text
    assert expire_calls(box, session) == 1  # asked, refused
    assert box.payment_status(session["id"]) == "pending"
    assert box.deliver(completed).status_code == 200
    assert box.payment_status(session["id"]) == "completed"
    assert box.balance_nanos(buyer) == 20 * 10**9
    assert "Nothing was charged" not in leave(box, session)  # once credited: no Stripe call
    assert expire_calls(box, session) == 1
    assert box.payment_status(session["id"]) == "completed"


def test_a_stripe_failing_at_the_cancel_page_leaves_the_payment_to_expire(box: BillingBox) -> None:
    """Stripe down when the user comes back: the page still answers, the payment stays pending
    (the session expires on its own within the half hour, and its event marks it)."""
    buyer = box.customer()
    session = started(box, buyer)
    for _ in range(3):  # the library's tries
        box.double.inject_error(500, "Stripe is having a bad day", "api_error")
    assert "Payment cancelled" in leave(box, session)
    assert box.payment_status(session["id"]) == "pending"
    box.double.injected_errors.clear()
    assert box.deliver(box.double.expire(session["id"])).status_code == 200
    assert box.payment_status(session["id"]) == "expired"


def test_a_cancel_link_of_no_payment_of_this_box_asks_stripe_nothing(box: BillingBox) -> None:
    made = len(box.double.requests)
    for query in ("payment=00000000-0000-4000-8000-000000000000", "payment=%00", "payment=x"):
        page = box.http.get(f"/billing/cancel?{query}")
        assert page.status_code == 200 and "Payment cancelled" in page.text
    assert len(box.double.requests) == made


def test_the_double_refuses_an_expiry_stripe_would_refuse(box: BillingBox) -> None:
    """Stripe takes `expires_at` 30 minutes to 24 hours ahead (the double as Stripe)."""
    line = {"price_data": {"currency": "usd", "unit_amount": "500",
                           "product_data": {"name": "x"}}, "quantity": "1"}  # fmt: skip
    for ahead in (29 * 60, 25 * 3600):
        params = {
            "mode": "payment",
            "line_items": [line],
            "expires_at": str(int(time.time()) + ahead),
        }
        with pytest.raises(StripeApiError) as refused:
            box.double.handle("POST", "/v1/checkout/sessions", params)
        assert refused.value.status == 400 and refused.value.body["error"]["param"] == "expires_at"
