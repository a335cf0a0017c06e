"""Stripe having a bad day at checkout: answering 5xx or refusing connections. The account's
hourly allowance of Checkout Sessions counts only the sessions Stripe made, so a user who
retried through an outage can pay as soon as Stripe is back."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from codelace_box.billing.checkout import CHECKOUTS_PER_HOUR
from tests.billing.conftest import SECRET_KEY, WEBHOOK_SECRET, BillingBox, BoxFactory
from tests.fakes.stripe_double import StripeDouble
from tests.fakes.stripe_wire import StripeApiError
from tests.pg_cluster import SHARED_SECRET
from tests.support import TLS

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def stripe_double() -> Iterator[StripeDouble]:
    """This module's own double: its outages must not reach another module's box."""
    double = StripeDouble(SECRET_KEY, WEBHOOK_SECRET).start()
    yield double
    double.stop()


def test_sessions_stripe_failed_to_make_do_not_use_up_the_hourly_allowance(
    billing_box_factory: BoxFactory, stripe_double: StripeDouble
) -> None:
    box = billing_box_factory()
    buyer = box.customer()
    attempts = 0
    stripe_double.outage = StripeApiError(500, "An unknown error occurred", error_type="api_error")
    for path in ("checkout", "setup") * (CHECKOUTS_PER_HOUR // 4 + 1):
        response = box.post(f"/api/v1/stripe/{path}", buyer, json={"amount_usd": 10})
        assert response.status_code == 502, response.text
        assert response.json()["error"]["code"] == "stripe_error"
        attempts += 1
    stripe_double.outage = None
    stripe_double.go_down()
    try:
        while attempts <= CHECKOUTS_PER_HOUR:
            response = box.post("/api/v1/stripe/checkout", buyer, json={"amount_usd": 10})
            assert response.status_code == 502, response.text
            assert response.json()["error"]["code"] == "stripe_unreachable"
            attempts += 1
    finally:
        stripe_double.come_back()
    assert stripe_double.sessions == {} and box.history(buyer) == []
    # Stripe is back: the whole allowance is there, and it still ends where it did.
    box.start_setup(buyer)
    for _ in range(CHECKOUTS_PER_HOUR - 1):
        box.start_topup(buyer, 10)
    refused = box.post("/api/v1/stripe/checkout", buyer, json={"amount_usd": 10})
    assert refused.status_code == 429, refused.text
    assert len(stripe_double.sessions) == CHECKOUTS_PER_HOUR
    assert len(box.history(buyer)) == CHECKOUTS_PER_HOUR - 1


def test_attempts_whose_requester_left_are_given_back_when_stripe_fails(
    billing_box_factory: BoxFactory, stripe_double: StripeDouble
) -> None:
    """Stripe silent: a user does not wait out the box's timeouts, and leaves (closes the tab,
    interrupts the script); the server cancels the request. The Stripe call still ends, and
    failing, it does not count: once Stripe is back the user has the whole allowance."""
    box = billing_box_factory()
    buyer = box.customer()
    bucket = f"checkout:{buyer.user_id}"
    stripe_double.stall = threading.Event()
    stripe_double.outage = StripeApiError(500, "An unknown error occurred", error_type="api_error")
    try:
        for _ in range(CHECKOUTS_PER_HOUR):
            with pytest.raises(httpx.ReadTimeout):
                box.post("/api/v1/stripe/checkout", buyer, json={"amount_usd": 10}, timeout=0.3)
        stripe_double.stall.set()  # Stripe answers the calls still waiting: 500
        deadline = time.monotonic() + 30
        while box.query("SELECT COUNT(*) FROM rate_event WHERE bucket = ?", bucket)[0][0]:
            assert time.monotonic() < deadline, "the failed sessions kept their counts"
            time.sleep(0.2)
    finally:
        stripe_double.stall.set()
        stripe_double.stall = stripe_double.outage = None
    for _ in range(CHECKOUTS_PER_HOUR):
        box.start_topup(buyer, 10)
    refused = box.post("/api/v1/stripe/checkout", buyer, json={"amount_usd": 10})
    assert refused.status_code == 429, refused.text
    assert len(box.history(buyer)) == CHECKOUTS_PER_HOUR
    assert "never retrieved" not in box.server.log_text()


@pytest.mark.parametrize(
    "refusal",
    [
        # a 4xx refusal of the request itself (bad parameters, say an email Stripe will not
        # take) fails the same way however often it is tried
        StripeApiError(400, "Invalid email address: x", param="customer_email"),
        # Stripe's 429 is the operator's account-wide API rate limit, the one the hourly
        # allowance exists to protect
        StripeApiError(
            429,
            "Request rate limit exceeded.",
            code="rate_limit",
            error_type="invalid_request_error",
        ),
    ],
    ids=["refused", "rate-limited"],
)
def test_sessions_stripe_refused_or_rate_limited_still_count(
    billing_box_factory: BoxFactory, stripe_double: StripeDouble, refusal: StripeApiError
) -> None:
    """Attempts Stripe refused for what they asked, or for the operator's rate limit, keep
    counting: giving them back let a script holding one key call Stripe without bound (exactly
    while every account's checkouts were being refused, for the 429)."""
    box = billing_box_factory()
    buyer = box.customer()
    stripe_double.outage = refusal
    try:
        for _ in range(CHECKOUTS_PER_HOUR):
            response = box.post("/api/v1/stripe/checkout", buyer, json={"amount_usd": 10})
            assert response.status_code == {400: 502, 429: 503}[refusal.status], response.text
        calls = len(stripe_double.calls("POST", "/v1/checkout/sessions"))
        refused = box.post("/api/v1/stripe/checkout", buyer, json={"amount_usd": 10})
    finally:
        stripe_double.outage = None
    assert refused.status_code == 429, refused.text
    assert len(stripe_double.calls("POST", "/v1/checkout/sessions")) == calls


async def start_at_once(boxes: list[BillingBox], key: str, count: int) -> list[int]:
    """`count` top-ups of one account started at once, spread over the boxes; the statuses."""
    headers = {"authorization": f"Bearer {key}"}
    urls = itertools.cycle(box.server.base_url for box in boxes)
    async with httpx.AsyncClient(timeout=120, verify=TLS) as client:
        answers = await asyncio.gather(
            *(
                client.post(
                    f"{next(urls)}/api/v1/stripe/checkout", json={"amount_usd": 10}, headers=headers
                )
                for _ in range(count)
            )
        )
    return sorted(answer.status_code for answer in answers)


def test_two_boxes_on_one_database_give_failed_sessions_back_at_once(
    billing_box_factory: BoxFactory, stripe_double: StripeDouble, pg_url: str
) -> None:
    """Two boxes sharing a PostgreSQL database, one account's attempts racing on both: while
    Stripe fails none of them counts, and once it is back exactly the allowance succeeds
    (attempts in flight at once count until they fail: more than the allowance at once get
    429 even while Stripe is down)."""
    shared = {"database": {"url": pg_url}, "server": {"secret_key": SHARED_SECRET}}
    boxes = [billing_box_factory(**shared) for _ in range(2)]
    buyer = boxes[0].customer("racer")
    stripe_double.outage = StripeApiError(503, "Service unavailable", error_type="api_error")
    try:  # two rounds, each within the allowance (in flight at once, each attempt counts)
        failed = [asyncio.run(start_at_once(boxes, buyer.key, 12)) for _ in range(2)]
    finally:
        stripe_double.outage = None
    assert failed == [[502] * 12] * 2
    made = asyncio.run(start_at_once(boxes, buyer.key, CHECKOUTS_PER_HOUR + 3))
    assert made == [200] * CHECKOUTS_PER_HOUR + [429] * 3
    assert len(boxes[1].history(buyer)) == CHECKOUTS_PER_HOUR


def gateway_page(status: int) -> StripeApiError:
    """What a load balancer or egress proxy in front of Stripe answers when it fails: a page,
    not Stripe's JSON."""
    error = StripeApiError(status, "")
    filler = "<p>" + "Please try again in a few minutes. " * 200 + "</p>"
    error.html = (
        f"<html><head><title>{status} Bad Gateway</title></head><body>{filler}</body></html>"
    )
    return error


def test_a_page_instead_of_stripe_json_is_a_short_502(
    billing_box_factory: BoxFactory, stripe_double: StripeDouble
) -> None:
    """The user gets a short upstream error, neither the page nor its markup, and the account's
    allowance is untouched."""
    box = billing_box_factory()
    buyer = box.customer()
    stripe_double.outage = gateway_page(502)
    try:
        response = box.post("/api/v1/stripe/checkout", buyer, json={"amount_usd": 10})
    finally:
        stripe_double.outage = None
    assert response.status_code == 502, response.text
    error = response.json()["error"]
    assert error["code"] == "stripe_error"
    assert "<" not in error["message"] and len(error["message"]) < 300, error["message"]
    assert "HTTP 502" in error["message"]
    assert "Please try again" not in box.server.log_text()
    box.start_topup(buyer, 10)


def test_an_answer_nested_too_deep_instead_of_stripe_json_is_a_short_502(
    billing_box_factory: BoxFactory, stripe_double: StripeDouble
) -> None:
    """A proxy's (or a broken Stripe's) answer of JSON nested deeper than json reads: the
    stripe library gives it as an API error, whose body the box read again (catching only
    ValueError: RecursionError is none) and answered a 500 'internal error'."""
    box = billing_box_factory()
    buyer = box.customer()
    outage = StripeApiError(502, "")
    outage.html = "[" * 1500 + "]" * 1500
    stripe_double.outage = outage
    try:
        response = box.post("/api/v1/stripe/checkout", buyer, json={"amount_usd": 10})
    finally:
        stripe_double.outage = None
    assert response.status_code == 502, response.text
    assert response.json()["error"]["code"] == "stripe_error", response.text


@pytest.mark.parametrize(("header", "wait"), [({"Retry-After": "7"}, "7"), ({}, "5")])
def test_stripe_rate_limiting_a_checkout_is_a_503_saying_when_to_try_again(
    billing_box_factory: BoxFactory,
    stripe_double: StripeDouble,
    header: dict[str, str],
    wait: str,
) -> None:
    """Stripe's own 429 while starting a checkout (the operator's account-wide API rate
    limit): it was a 502 `stripe_error` without Retry-After, so the SDKs and the portal could
    not tell it passes. A 503 `stripe_rate_limited` with Retry-After (Stripe's, else 5 s),
    its message saying when to try again."""
    box = billing_box_factory()
    buyer = box.customer()
    stripe_double.outage = StripeApiError(
        429, "Request rate limit exceeded.", code="rate_limit", headers=header
    )
    try:
        response = box.post("/api/v1/stripe/checkout", buyer, json={"amount_usd": 10})
    finally:
        stripe_double.outage = None
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == wait
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("api_error", "stripe_rate_limited"), error
    assert f"try again in {wait} s" in error["message"], error
    assert box.history(buyer) == []
