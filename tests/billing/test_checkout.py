"""Starting payments through the running box: the Checkout Sessions it creates at Stripe (the
double, through the real `stripe` library), the pending payment it records, and what it
refuses."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from codelace_box.billing.checkout import CHECKOUTS_PER_HOUR
from tests.billing.conftest import BillingBox, BoxFactory, stripe_section
from tests.support import run_cli

pytestmark = pytest.mark.timeout(120)


def test_checkout_creates_a_payment_session_and_a_pending_payment(box: BillingBox) -> None:
    buyer = box.customer()
    response = box.post("/api/v1/stripe/checkout", buyer, json={"amount_usd": 25.5})
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"]
    url = response.json()["checkout_url"]
    session = box.double.session_by_url(url)
    assert url == session["url"]
    assert session["mode"] == "payment"
    assert session["amount_total"] == 2550
    assert session["currency"] == "usd"
    assert session["client_reference_id"] == str(buyer.user_id)
    metadata = dict(session["metadata"])
    tag = metadata.pop("codelace_box")  # signed with the box's secret (test_topup_claims.py)
    assert len(tag) == 32 and int(tag, 16) >= 0
    assert metadata == {
        "codelace_user_id": str(buyer.user_id),
        "codelace_kind": "topup",
        "codelace_amount": "2550",
        "codelace_currency": "usd",
    }
    assert session["customer_email"] == buyer.email
    base = box.server.base_url
    assert session["success_url"] == f"{base}/billing/success?session_id={{CHECKOUT_SESSION_ID}}"
    assert box.payment_status(session["id"]) == "pending"
    [payment] = box.history(buyer)
    assert session["cancel_url"] == f"{base}/billing/cancel?payment={payment['id']}"
    assert payment["amount_usd"] == 25.5
    assert (payment["kind"], payment["status"]) == ("topup", "pending")
    assert box.balance_nanos(buyer) == 0


def test_the_stripe_call_is_form_encoded_with_the_secret_key(box: BillingBox) -> None:
    buyer = box.customer()
    box.start_topup(buyer, 10)
    call = box.double.calls("POST", "/v1/checkout/sessions")[-1]
    assert call["headers"]["content-type"] == "application/x-www-form-urlencoded"
    assert call["headers"]["stripe-version"]
    item = call["params"]["line_items"][0]
    assert item == {
        "price_data": {
            "currency": "usd",
            "unit_amount": "1000",
            "product_data": {"name": "codelace-box credit (10 USD)"},
        },
        "quantity": "1",
    }


def test_setup_creates_a_setup_session_for_a_card(box: BillingBox) -> None:
    buyer = box.customer()
    response = box.post("/api/v1/stripe/setup", buyer)
    assert response.status_code == 200, response.text
    session = box.double.session_by_url(response.json()["checkout_url"])
    assert session["mode"] == "setup"
    assert session["setup_intent"].startswith("seti_")
    assert session["allowed_payment_method_types"] == ["card"]
    assert session["metadata"]["codelace_user_id"] == str(buyer.user_id)
    assert box.history(buyer) == []  # a setup is not a payment until it earns the trial


@pytest.mark.parametrize(
    ("amount", "code"),
    [
        (9.99, "amount_too_small"),
        (0, "amount_too_small"),
        (-20, "amount_too_small"),
        (10_000.01, "amount_too_large"),
        (1e300, "amount_too_large"),
        (10.001, "invalid_amount"),
        ("20", "invalid_amount"),
        ("twenty", "invalid_amount"),
        (None, "invalid_amount"),
        (True, "invalid_amount"),
        ([20], "invalid_amount"),
        ({"usd": 20}, "invalid_amount"),
    ],
)
def test_bad_amounts_are_refused_and_nothing_is_created(
    box: BillingBox, amount: Any, code: str
) -> None:
    buyer = box.customer()
    before = len(box.double.calls("POST", "/v1/checkout/sessions"))
    response = box.post("/api/v1/stripe/checkout", buyer, json={"amount_usd": amount})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error",
        code,
        "amount_usd",
    )
    assert len(box.double.calls("POST", "/v1/checkout/sessions")) == before
    assert box.history(buyer) == []


@pytest.mark.parametrize(
    "body", [b"", b"{", b"[]", b'{"amount": 20}', b'{"amount_usd": NaN}', b'{"amount_usd": 1e999}']
)
def test_malformed_bodies_are_400(box: BillingBox, body: bytes) -> None:
    buyer = box.customer()
    before = len(box.double.calls("POST", "/v1/checkout/sessions"))
    response = box.post("/api/v1/stripe/checkout", buyer, content=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert len(box.double.calls("POST", "/v1/checkout/sessions")) == before  # nothing at Stripe
    assert box.history(buyer) == []


def test_exact_cents_and_the_limits_are_accepted(box: BillingBox) -> None:
    buyer = box.customer()
    for amount, cents in [(10, 1000), (9999.99, 999999), (10_000, 1_000_000), (12.1, 1210)]:
        session_id = box.start_topup(buyer, amount)
        assert box.double.session(session_id)["amount_total"] == cents
    assert sorted(p["amount_usd"] for p in box.history(buyer)) == [10, 12.1, 9999.99, 10_000]


@pytest.mark.parametrize("path", ["/api/v1/stripe/checkout", "/api/v1/stripe/setup"])
def test_starting_a_payment_needs_a_valid_key(box: BillingBox, path: str) -> None:
    assert box.post(path, None, json={"amount_usd": 20}).status_code == 401
    response = box.http.post(
        path, json={"amount_usd": 20}, headers={"authorization": "Bearer cl_not_a_real_key"}
    )
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"


def test_payment_history_needs_a_key_and_validates_limit(box: BillingBox) -> None:
    assert box.get("/api/v1/customer/payment", None).status_code == 401
    buyer = box.customer()
    for limit in ("0", "x", "1001", "-1"):
        response = box.get("/api/v1/customer/payment", buyer, params={"limit": limit})
        assert response.status_code == 400, limit
        assert response.json()["error"]["param"] == "limit"


def test_a_stripe_error_is_a_502_without_secrets(box: BillingBox) -> None:
    buyer = box.customer()
    box.double.inject_error(400, "Your account cannot currently make live charges.")
    response = box.post("/api/v1/stripe/checkout", buyer, json={"amount_usd": 20})
    assert response.status_code == 502, response.text
    error = response.json()["error"]
    assert error["code"] == "stripe_error"
    assert "cannot currently make live charges" in error["message"]
    assert box.history(buyer) == []


def test_a_refused_secret_key_is_a_503_that_names_the_setting(box: BillingBox) -> None:
    buyer = box.customer()
    box.double.inject_error(401, f"Invalid API Key provided: {box.double.secret_key}")
    response = box.post("/api/v1/stripe/setup", buyer)
    assert response.status_code == 503, response.text
    message = response.json()["error"]["message"]
    assert "stripe.secret_key" in message
    assert box.double.secret_key not in response.text
    assert box.double.secret_key not in box.server.log_text()


def test_return_pages_are_small_html(box: BillingBox) -> None:
    buyer = box.customer()
    session_id = box.start_topup(buyer, 12)
    page = box.http.get("/billing/success", params={"session_id": session_id})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "as soon as Stripe confirms" in page.text
    unknown = box.http.get("/billing/success", params={"session_id": "<script>"})
    assert unknown.status_code == 200 and "<script>" not in unknown.text
    cancel = box.http.get("/billing/cancel")
    assert cancel.status_code == 200 and "Nothing was charged" in cancel.text


@pytest.mark.parametrize(
    ("status", "error_type", "times"),
    [(429, "rate_limit_error", 1), (500, "api_error", 3), (400, "invalid_request_error", 1)],
)
def test_stripe_failing_at_checkout_leaves_no_payment_and_no_secret(
    box: BillingBox, status: int, error_type: str, times: int
) -> None:
    """A 5xx is retried (the library's idempotency key makes that safe) before giving up."""
    buyer = box.customer()
    for _ in range(times):
        box.double.inject_error(status, f"No luck with key {box.double.secret_key}", error_type)
    response = box.post("/api/v1/stripe/checkout", buyer, json={"amount_usd": 20})
    assert response.status_code in (502, 503), response.text
    error = response.json()["error"]
    assert error["code"].startswith("stripe_"), error
    assert box.double.secret_key not in response.text
    assert box.double.secret_key[8:] not in box.server.log_text()
    assert box.history(buyer) == []
    assert box.double.injected_errors == []


def test_a_key_that_cannot_manage_keys_may_still_start_a_checkout_and_a_setup(
    box: BillingBox,
) -> None:
    """Starting a checkout only answers a Stripe URL for this account's own credit (money moves
    when a person pays in the browser), so a tool's key (`can_manage_keys` false) may, while it
    still may not mint a key."""
    buyer = box.customer()
    made = run_cli(box.config, "keys", "create", buyer.email, "--no-manage-keys")
    assert made.returncode == 0, made.stderr
    tool = replace(buyer, key=made.stdout.strip().splitlines()[0])
    session_id = box.start_topup(tool, 20)
    assert box.payment_status(session_id) == "pending"
    assert box.double.sessions[session_id]["client_reference_id"] == str(buyer.user_id)
    setup = box.double.sessions[box.start_setup(tool)]
    assert setup["mode"] == "setup"
    refused = box.post("/api/v1/auth/key", tool, json={"name": "uncapped"})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "key_management_not_allowed"


def test_an_account_starts_a_bounded_number_of_checkouts_an_hour(box: BillingBox) -> None:
    """Each Checkout Session is a call to Stripe on the operator's account (whose API rate limit
    every account shares), a top-up also a pending payment: a script with any key of the
    account gets a 429 past CHECKOUTS_PER_HOUR, top-ups and card setups counted together, and
    another account is not held back."""
    buyer, other = box.customer(), box.customer()
    for _ in range(CHECKOUTS_PER_HOUR - 1):
        box.start_topup(buyer, 10)
    box.start_setup(buyer)
    made = len(box.double.sessions)
    for path, body in (("checkout", {"amount_usd": 10}), ("setup", None)):
        refused = box.post(f"/api/v1/stripe/{path}", buyer, json=body)
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"]["type"] == "rate_limit_error"
        assert 1 <= int(refused.headers["retry-after"]) <= 3600
    assert len(box.double.sessions) == made, "no session started past the limit"
    assert len(box.history(buyer)) == CHECKOUTS_PER_HOUR - 1
    box.start_topup(other, 10)


def test_a_minimum_below_what_stripe_charges_still_refuses_with_a_400(
    box: BillingBox, billing_box_factory: BoxFactory
) -> None:
    """An operator may set stripe.min_topup_usd below Stripe's smallest charge (0.50 USD), or
    0: an amount Stripe would refuse is then the user's 400 saying the real minimum, not a
    502 from Stripe."""
    cheap = billing_box_factory(stripe=stripe_section(box.double, min_topup_usd=0))
    buyer = cheap.customer()
    made = len(cheap.double.sessions)
    refused = cheap.post("/api/v1/stripe/checkout", buyer, json={"amount_usd": 0.25})
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["code"] == "amount_too_small"
    assert "0.5 USD" in refused.json()["error"]["message"]
    assert len(cheap.double.sessions) == made
    cheap.start_topup(buyer, 0.5)


def test_an_amount_stripe_finds_too_small_is_a_400_not_a_502(
    box: BillingBox, billing_box_factory: BoxFactory
) -> None:
    """Stripe's smallest charge depends on the currency and on the account's settlement
    currency, which the box's own floor cannot know for every currency (HKD here): Stripe's
    `amount_too_small` refusal was a 502 `stripe_error`, which clients retry, for an amount
    that can never be paid. It is the user's 400, saying what Stripe said."""
    cheap = billing_box_factory(stripe=stripe_section(box.double, currency="hkd", min_topup_usd=0))
    buyer = cheap.customer()
    refused = cheap.post("/api/v1/stripe/checkout", buyer, json={"amount_usd": 0.25})
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error",
        "amount_too_small",
        "amount_usd",
    )
    assert "at least $0.50" in error["message"]
    assert cheap.query("SELECT COUNT(*) FROM payment WHERE user_id = ?", buyer.user_id) == [(0,)]
    cheap.start_topup(buyer, 1)


@pytest.mark.parametrize(
    ("text", "code"),
    [("9.999999999999999999", "amount_too_small"), ("10.000000000000000001", "invalid_amount")],
)
def test_an_amount_is_read_exactly_as_written(box: BillingBox, text: str, code: str) -> None:
    """A JSON number read as a float loses digits past the 17th: 9.999999999999999999 (below
    the 10 USD minimum) was a top-up of 10 USD, and 10.000000000000000001 (past the cents) one
    of 10 USD too. Money is read exactly, so each is refused as written."""
    buyer = box.customer()
    before = len(box.double.calls("POST", "/v1/checkout/sessions"))
    head = {"authorization": f"Bearer {buyer.key}", "content-type": "application/json"}
    response = box.http.post("/api/v1/stripe/checkout", headers=head,
                             content=f'{{"amount_usd": {text}}}')  # fmt: skip
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == code
    assert len(box.double.calls("POST", "/v1/checkout/sessions")) == before


def test_a_whole_unit_currency_refuses_its_fractions_with_a_400(
    box: BillingBox, billing_box_factory: BoxFactory
) -> None:
    """Stripe's ISK is two-decimal in its API but charged in whole kronur only (amounts must be
    divisible by 100): 10.50 is the user's 400 saying so, not Stripe's refusal as a 502 that
    also spends one of the account's hourly Checkout Sessions; 11 is charged as 1100."""
    krona = billing_box_factory(stripe=stripe_section(box.double, currency="isk"))
    buyer = krona.customer()
    made = len(krona.double.sessions)
    refused = krona.post("/api/v1/stripe/checkout", buyer, json={"amount_usd": 10.5})
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["code"] == "invalid_amount"
    assert "whole units" in refused.json()["error"]["message"]
    assert len(krona.double.sessions) == made
    session = krona.double.sessions[krona.start_topup(buyer, 11)]
    assert (session["amount_total"], session["currency"]) == (1100, "isk")


@pytest.mark.parametrize(
    ("path", "body"),
    [("/api/v1/stripe/checkout", {"amount_usd": 10}), ("/api/v1/stripe/setup", None)],
)
def test_stripe_returns_the_user_to_the_address_the_request_reached(
    box: BillingBox, path: str, body: dict[str, Any] | None
) -> None:
    """Without server.public_url the return links Stripe received (the real `stripe` library,
    against the double) named the listen address, which a browser elsewhere cannot open: they
    name the Host the request reached, its port kept (a proxy's forwarded headers are not
    trusted here: server.proxies_count is 0)."""
    buyer = box.customer()
    headers = {"authorization": f"Bearer {buyer.key}", "host": "pay.example.test:8443",
               "x-forwarded-for": "203.0.113.9", "x-forwarded-host": "evil.test"}  # fmt: skip
    response = box.http.post(path, headers=headers, json=body)
    assert response.status_code == 200, response.text
    session = box.double.session_by_url(response.json()["checkout_url"])
    base = "http://pay.example.test:8443"
    assert session["success_url"] == f"{base}/billing/success?session_id={{CHECKOUT_SESSION_ID}}"
    assert session["cancel_url"].partition("?")[0] == f"{base}/billing/cancel"  # (its query:
    # what was left, test_the_card_setup_cancel_page_speaks_of_a_card_setup)


def test_the_card_setup_cancel_page_speaks_of_a_card_setup(box: BillingBox) -> None:
    """A user who left Stripe's card setup came back to "Payment cancelled": there was no
    payment. The setup's cancel link says what was left, and the page says so."""
    buyer = box.customer()
    session = box.double.session(box.start_setup(buyer))
    cancel_url = str(session["cancel_url"])
    assert cancel_url.startswith(f"{box.server.base_url}/billing/cancel?")
    page = box.http.get(cancel_url.removeprefix(box.server.base_url))
    assert page.status_code == 200
    assert "Card setup cancelled" in page.text and "No card was saved" in page.text
    assert "Payment" not in page.text
