"""Stripe's return page for a top-up that was not paid says what happened in plain words. It
said "This payment is failed" (the status word dropped into a sentence)."""

from __future__ import annotations

import html

import pytest

from tests.portal.conftest import PortalBox

WORDS = {
    "failed": "The payment failed; nothing was charged.",
    "expired": "The payment was not made in time and has expired; nothing was charged.",
}


@pytest.mark.parametrize("status", sorted(WORDS))
def test_an_unpaid_top_up_is_told_in_plain_words(box: PortalBox, status: str) -> None:
    email = f"unpaid-{status}@portal.test"
    with box.http() as client:
        csrf = box.sign_in_http(client, email)["csrf_token"]
        started = client.post(
            "/portal/api/topup",
            json={"amount_usd": "25"},
            headers={"origin": box.url, "x-csrf-token": csrf},
        )
        assert started.status_code == 200, started.text
        session = box.double.session_by_url(started.json()["checkout_url"])
        if status == "failed":
            box.double.complete(session["id"], payment_status="unpaid")  # a bank debit, later
            event = box.double.fail_async(session["id"])
        else:
            event = box.double.expire(session["id"])
        body, headers = box.double.webhook(event)
        assert client.post("/api/v1/stripe/webhook", content=body, headers=headers).is_success
        assert box.query(
            "SELECT status FROM payment WHERE stripe_session_id = ?", session["id"]
        ) == [(status,)]
        page = client.get("/billing/success", params={"session_id": session["id"]})
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert "Payment not completed" in text and WORDS[status] in text, text
