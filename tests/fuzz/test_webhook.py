"""Stripe's webhook fed signed events with any value replaced by one of another JSON type: a
signature proves who sent an event, not that its shape is the one the box knows (Stripe's
API versions change shapes). Each answer is a 2xx or a 4xx, never a 500 (which Stripe would
retry for days), and every balance still matches its ledger."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.stripe_double import StripeDouble
from tests.fakes.stripe_wire import sign_payload
from tests.fuzz.bodies import places, replaced
from tests.fuzz.conftest import FuzzBox, error_problems
from tests.fuzz.test_bodies import HOSTILE

pytestmark = pytest.mark.timeout(60)
WEBHOOK = "/api/v1/stripe/webhook"


def test_no_value_of_another_type_in_a_signed_event_makes_a_5xx(
    box: FuzzBox, fakes: tuple[FakeOpenAI, Any, StripeDouble, Any]
) -> None:
    stripe = fakes[2]
    _, key = box.new_user("0")
    problems = []
    with box.http(key) as http:
        url = http.post("/api/v1/stripe/checkout", json={"amount_usd": 25}).json()["checkout_url"]
        event = stripe.complete(stripe.session_by_url(url)["id"])
        for number, at in enumerate(places(event)):
            for value in HOSTILE:
                mutated = replaced(event, at, value)
                mutated["id"] = f"evt_fuzz_{number}_{type(value).__name__}"
                body = json.dumps(mutated).encode()
                signature = sign_payload(body, stripe.webhook_secret, int(time.time()))
                headers = {"content-type": "application/json", "stripe-signature": signature}
                answer = http.post(WEBHOOK, content=body, headers=headers)
                problems += [f"{at} = {value!r}: {problem}" for problem in
                             error_problems(answer, WEBHOOK, box.secrets())]  # fmt: skip
    assert not problems, "\n".join(problems)
    assert "every balance matches its ledger" in box.cli("doctor")
