"""A Stripe webhook refused for its signature gets a WARNING in words, at most one a minute
(one limit for every reason): a signature that matches no secret (the wrong
stripe.webhook_secret: tests/billing/test_webhooks.py), a timestamp outside Stripe's tolerance
(the box's clock is off), a missing or unreadable Stripe-Signature header (something in between
strips or rewrites headers, or the request is not from Stripe); never the header's value."""

from __future__ import annotations

import time

import pytest

from tests.billing.conftest import BillingBox, BoxFactory

pytestmark = pytest.mark.timeout(120)
CLOCK = "the box's clock may be off"
HEADER = "strips or rewrites headers"


def refused(box: BillingBox, body: bytes, headers: dict[str, str]) -> None:
    response = box.http.post("/api/v1/stripe/webhook", content=body, headers=headers)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_signature"


def warnings(box: BillingBox) -> list[str]:
    """The log's warnings of refused webhooks (not the start's, of a new database and such)."""
    lines = box.server.log_text().splitlines()
    return [line for line in lines if " WARNING " in line and "Stripe webhook" in line]


def test_a_timestamp_outside_the_tolerance_is_logged_once_a_minute_in_words(
    billing_box_factory: BoxFactory,
) -> None:
    """A box whose clock is off refuses every delivery as too old (or from the future), and
    said nothing: customers paid and got no credit, the operator had no clue why."""
    box = billing_box_factory()  # its own process: no earlier warning within the minute
    event = box.double.complete(box.start_topup(box.customer(), 20))
    now = int(time.time())
    for moment in (now - 3600, now + 3600, now - 7200):
        refused(box, *box.double.webhook(event, timestamp=moment))
    body, headers = box.double.webhook(event)
    refused(box, body, {k: v for k, v in headers.items() if k != "stripe-signature"})
    (warning,) = warnings(box)  # one for all: the minute's limit is shared with the others
    assert "timestamp outside Stripe's tolerance" in warning and CLOCK in warning, warning
    assert "NTP" in warning and HEADER not in warning


def test_a_missing_or_unreadable_signature_header_is_logged_once_a_minute_in_words(
    billing_box_factory: BoxFactory,
) -> None:
    """A proxy that drops or rewrites the Stripe-Signature header makes every delivery a 400,
    which the log did not mention; the header's value is never logged."""
    box = billing_box_factory()
    event = box.double.complete(box.start_topup(box.customer(), 20))
    body, headers = box.double.webhook(event)
    without = {k: v for k, v in headers.items() if k != "stripe-signature"}
    refused(box, body, without)
    for value in ("rewritten-by-a-proxy-4f1e", "t=1,v0=0f1e2d3c4b5a"):
        refused(box, body, without | {"stripe-signature": value})
    (warning,) = warnings(box)
    assert "Stripe-Signature header" in warning and HEADER in warning, warning
    assert "not from Stripe" in warning and CLOCK not in warning
    log = box.server.log_text()
    assert "rewritten-by-a-proxy" not in log and "0f1e2d3c4b5a" not in log


def test_an_unreadable_signature_header_is_logged_in_words(
    billing_box_factory: BoxFactory,
) -> None:
    box = billing_box_factory()
    event = box.double.complete(box.start_topup(box.customer(), 20))
    body, headers = box.double.webhook(event)
    refused(box, body, headers | {"stripe-signature": "garbled-9a8b7c6d"})
    (warning,) = warnings(box)
    assert "Stripe-Signature header" in warning and HEADER in warning, warning
    assert "garbled-9a8b7c6d" not in box.server.log_text()
