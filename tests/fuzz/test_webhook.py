"""Stripe's webhook fed signed events with any value replaced by one of another JSON type: a
signature proves who sent an event, not that its shape is the one the box knows (Stripe's
API versions change shapes). Each answer is a 2xx or a 4xx, never a 500 (which Stripe would
retry for days), and every balance still matches its ledger."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.stripe_double import StripeDouble
from tests.fakes.stripe_wire import sign_payload
from tests.fuzz.bodies import places, replaced
from tests.fuzz.conftest import FuzzBox, error_problems
from tests.fuzz.test_bodies import HOSTILE

pytestmark = pytest.mark.timeout(60)
WEBHOOK = "/api/v1/stripe/webhook"
EVENTS = ["completed", "setup-completed", "expired", "charge.refunded", "refund.created",
          "charge.dispute.created"]  # fmt: skip


def deliver(http: httpx.Client, stripe: StripeDouble, event: dict[str, Any]) -> httpx.Response:
    body = json.dumps(event).encode()
    signature = sign_payload(body, stripe.webhook_secret, int(time.time()))
    headers = {"content-type": "application/json", "stripe-signature": signature}
    return http.post(WEBHOOK, content=body, headers=headers)


def event_of(kind: str, http: httpx.Client, stripe: StripeDouble) -> dict[str, Any]:
    """A genuine event of `kind` for a fresh session of this client's account (a top-up paid
    and credited first where the event is a refund or dispute of it)."""
    if kind == "setup-completed":
        url = http.post("/api/v1/stripe/setup").json()["checkout_url"]
        return stripe.complete(stripe.session_by_url(url)["id"])
    url = http.post("/api/v1/stripe/checkout", json={"amount_usd": 25}).json()["checkout_url"]
    session_id = stripe.session_by_url(url)["id"]
    if kind == "expired":
        return stripe.expire(session_id)
    completed = stripe.complete(session_id)
    if kind == "completed":
        return completed
    assert deliver(http, stripe, completed).status_code == 200
    if kind == "charge.dispute.created":
        return stripe.dispute(session_id)
    refunded, created = stripe.refund(session_id)
    return refunded if kind == "charge.refunded" else created


@pytest.mark.parametrize("kind", EVENTS)
def test_no_value_of_another_type_in_a_signed_event_makes_a_5xx(
    box: FuzzBox, fakes: tuple[FakeOpenAI, Any, StripeDouble, Any], kind: str
) -> None:
    stripe = fakes[2]
    _, key = box.new_user("0")
    problems = []
    with box.http(key) as http:
        event = event_of(kind, http, stripe)
        for number, at in enumerate(places(event)):
            for value in HOSTILE:
                mutated = replaced(event, at, value)
                mutated["id"] = f"{event['id']}_{number}_{type(value).__name__}"
                answer = deliver(http, stripe, mutated)
                problems += [f"{at} = {value!r}: {problem}" for problem in
                             error_problems(answer, WEBHOOK, box.secrets())]  # fmt: skip
    assert not problems, "\n".join(problems)
    assert "every balance matches its ledger" in box.cli("doctor")


@pytest.mark.parametrize("where", [("id",), ("data", "object", "id"), ("type",)])
def test_a_signed_event_holding_a_nul_is_refused_and_changes_nothing(
    box: FuzzBox, fakes: tuple[FakeOpenAI, Any, StripeDouble, Any], where: tuple[str, ...]
) -> None:
    """No Stripe object holds a NUL, and PostgreSQL takes none in a text field or parameter:
    an event id or session id with one was a 500 there (and a session of its own, credited,
    on SQLite). Refused like a lone surrogate escape, with a 400; the literal text `\\u0000`
    (a backslash and five characters) is still text."""
    stripe = fakes[2]
    _, key = box.new_user("0")
    with box.http(key) as http:
        event = event_of("completed", http, stripe)
        balance = http.get("/api/v1/customer/balance").json()
        answer = deliver(http, stripe, replaced(event, where, f"{event['id']}\x00"))
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["code"] == "invalid_event"
        assert http.get("/api/v1/customer/balance").json() == balance
        metadata = {**event["data"]["object"]["metadata"], "note": "\\u0000"}
        literal = replaced(event, ("data", "object", "metadata"), metadata)
        assert deliver(http, stripe, literal).json()["result"] == "credited"


@pytest.mark.parametrize("kind", ["completed", "setup-completed", "expired"])
@pytest.mark.parametrize("tag", ["\u202e", "\u00e9" * 64, "\x00"], ids=["rlo", "accents", "nul"])
def test_a_signed_session_whose_tag_is_not_ascii_is_not_ours_and_no_5xx(
    box: FuzzBox, fakes: tuple[FakeOpenAI, Any, StripeDouble, Any], kind: str, tag: str
) -> None:
    """A session's metadata tag (its proof that this box made it) was compared with
    `hmac.compare_digest` on text, which raises on text that is not ASCII: a 500 that Stripe
    retries for days. Such a tag is no tag of ours (a top-up whose pending row is here is
    credited by that row, as with any wrong tag)."""
    stripe = fakes[2]
    _, key = box.new_user("0")
    with box.http(key) as http:
        event = event_of(kind, http, stripe)
        metadata = {**event["data"]["object"]["metadata"], "codelace_box": tag}
        answer = deliver(http, stripe, replaced(event, ("data", "object", "metadata"), metadata))
        assert 200 <= answer.status_code < 500, answer.text
        assert not error_problems(answer, WEBHOOK, box.secrets())
    assert "every balance matches its ledger" in box.cli("doctor")
