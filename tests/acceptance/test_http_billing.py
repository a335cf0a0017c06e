"""docs/http-api.md "Customer", "Stripe" and "Public", from the outside: balance, usage and payment
shapes, Checkout top-ups and card setup through the Stripe double, webhooks, pricing, health."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.acceptance.conftest import ISO_Z, MODEL, Box, assert_envelope
from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.support import TLS, ServerProcess, base_sections, is_uuid4, write_config

pytestmark = pytest.mark.timeout(60)
HI = [{"role": "user", "content": "hi"}]


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def usd(value: Any) -> Decimal:
    assert is_number(value), value
    return Decimal(str(value))


def deliver(box: Box, event: dict[str, Any], **sign: Any) -> httpx.Response:
    body, headers = box.stripe.webhook(event, **sign)
    with box.http() as http:
        return http.post("/api/v1/stripe/webhook", content=body, headers=headers)


def start_checkout(http: httpx.Client, box: Box, amount: Any) -> str:
    response = http.post("/api/v1/stripe/checkout", json={"amount_usd": amount})
    assert response.status_code == 200, response.text
    url = response.json()["checkout_url"]
    assert isinstance(url, str) and url.startswith("https://")
    return str(box.stripe.session_by_url(url)["id"])


def test_the_balance_is_a_usd_number(box: Box) -> None:
    _, key = box.new_user("12.5")
    with box.http(key) as http:
        response = http.get("/api/v1/customer/balance")
    assert response.status_code == 200
    assert response.json() == {"credit_balance_usd": 12.5}


def test_usage_has_every_field_with_its_type(box: Box, upstream: FakeOpenAI) -> None:
    _, key = box.new_user()
    upstream.push(Reply(prompt_tokens=10, completion_tokens=4), Reply(prompt_tokens=5))
    with box.http(key) as http:
        for stream in (False, True):
            body = {"model": MODEL, "messages": HI, "stream": stream}
            assert http.post("/v1/chat/completions", json=body).status_code == 200
        usage = http.get("/api/v1/customer/usage").json()
        one = http.get("/api/v1/customer/usage", params={"limit": 1}).json()
        assert_envelope(http.get("/api/v1/customer/usage", params={"limit": 0}), 400)
    assert usage["request_count"] == 2
    for name in ("request_count", "total_input_token", "total_output_token"):
        assert type(usage[name]) is int, name
    assert usage["total_input_token"] == 15
    rows = usage["recent_requests"]
    assert usd(usage["total_cost_usd"]) == sum(usd(r["cost_usd"]) for r in rows)
    assert [r["stream"] for r in rows] == [True, False]  # newest first
    for row in rows:
        assert set(row) >= {"id", "model", "input_tokens", "output_tokens", "cost_usd",
                            "status", "stream", "duration_ms", "created_at"}  # fmt: skip
        assert isinstance(row["id"], str) and row["model"] == MODEL
        assert type(row["input_tokens"]) is int and type(row["output_tokens"]) is int
        assert type(row["duration_ms"]) is int and isinstance(row["status"], str)
        assert ISO_Z.match(row["created_at"])
    assert len(one["recent_requests"]) == 1 and one["request_count"] == 2


def test_a_top_up_is_pending_then_completed_once_by_the_webhook(box: Box) -> None:
    _, key = box.new_user("0")
    with box.http(key) as http:
        session_id = start_checkout(http, box, 12.34)
        [pending] = http.get("/api/v1/customer/payment").json()
        assert set(pending) >= {"id", "amount_usd", "kind", "status", "created_at"}
        assert is_uuid4(pending["id"]) and ISO_Z.match(pending["created_at"])
        assert (pending["kind"], pending["status"], pending["amount_usd"]) == (
            "topup", "pending", 12.34)  # fmt: skip
        event = box.stripe.complete(session_id)
        forged = deliver(box, event, secret="whsec_not_the_right_one")
        assert_envelope(forged, 400)
        assert http.get("/api/v1/customer/balance").json()["credit_balance_usd"] == 0
        assert [deliver(box, event).status_code for _ in range(3)] == [200] * 3
        [done] = http.get("/api/v1/customer/payment").json()
        assert (done["id"], done["status"]) == (pending["id"], "completed")
        assert http.get("/api/v1/customer/balance").json()["credit_balance_usd"] == 12.34


def test_an_unsigned_webhook_is_400_and_changes_nothing(box: Box) -> None:
    _, key = box.new_user("0")
    with box.http(key) as http:
        session_id = start_checkout(http, box, 20)
        body, _ = box.stripe.webhook(box.stripe.complete(session_id))
        response = http.post("/api/v1/stripe/webhook", content=body)
        assert_envelope(response, 400)
        assert http.get("/api/v1/customer/payment").json()[0]["status"] == "pending"


@pytest.mark.parametrize(("outcome", "status"), [("expire", "expired"), ("fail", "failed")])
def test_expired_and_failed_sessions_are_marked_so(box: Box, outcome: str, status: str) -> None:
    _, key = box.new_user("0")
    with box.http(key) as http:
        session_id = start_checkout(http, box, 15)
        if outcome == "expire":
            event = box.stripe.expire(session_id)
        else:
            box.stripe.complete(session_id, payment_status="unpaid")
            event = box.stripe.fail_async(session_id)
        assert deliver(box, event).status_code == 200
        [payment] = http.get("/api/v1/customer/payment").json()
        assert payment["status"] == status
        assert http.get("/api/v1/customer/balance").json()["credit_balance_usd"] == 0


@pytest.mark.parametrize("amount", [9.99, 0, -10, "20", None, True, 1e308])
def test_a_top_up_below_the_minimum_or_not_a_number_is_400(box: Box, amount: object) -> None:
    with box.http(box.shared_key) as http:
        response = http.post("/api/v1/stripe/checkout", json={"amount_usd": amount})
    assert_envelope(response, 400)


def test_the_first_completed_setup_grants_the_trial_credit_once(box: Box) -> None:
    _, key = box.new_user("0")
    with box.http(key) as http:
        for _ in range(2):
            made = http.post("/api/v1/stripe/setup")
            assert made.status_code == 200, made.text
            session = box.stripe.session_by_url(made.json()["checkout_url"])
            assert session["mode"] == "setup"
            assert deliver(box, box.stripe.complete(session["id"])).status_code == 200
        payments = http.get("/api/v1/customer/payment").json()
        balance = http.get("/api/v1/customer/balance").json()["credit_balance_usd"]
    trials = [p for p in payments if p["kind"] == "trial"]
    assert len(trials) == 1 and trials[0]["status"] == "completed"
    assert trials[0]["amount_usd"] == 1 and balance == 1


def test_an_admin_credit_is_listed_as_a_completed_admin_payment(box: Box) -> None:
    _, key = box.new_user("3")
    with box.http(key) as http:
        [payment] = http.get("/api/v1/customer/payment").json()
    assert (payment["kind"], payment["status"], payment["amount_usd"]) == ("admin", "completed", 3)


def test_pricing_lists_every_enabled_model_in_usd(box: Box) -> None:
    with box.http() as http:
        response = http.get("/api/v1/public/pricing")
    assert response.status_code == 200
    prices = {p["model"]: p for p in response.json()}
    assert prices[MODEL] == {"model": MODEL, "input_per_1m": 2.5, "output_per_1m": 10,
                             "cache_read_per_1m": 2.5, "cache_write_per_1m": 2.5,
                             "cache_write_1h_per_1m": 2.5}  # fmt: skip
    for price in prices.values():
        assert is_number(price["input_per_1m"]) and is_number(price["output_per_1m"])


def test_healthz_is_ok(box: Box) -> None:
    with box.http() as http:
        response = http.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert response.headers.get("x-request-id")


@pytest.fixture(scope="module")
def box_without_stripe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("nostripe")
    sections = base_sections(folder)
    server = ServerProcess(write_config(folder / "codelace.toml", sections),
                           int(sections["server"]["port"]))  # fmt: skip
    yield server.start()
    server.stop()


@pytest.mark.parametrize(
    "path", ["/api/v1/stripe/setup", "/api/v1/stripe/checkout", "/api/v1/stripe/webhook"]
)
def test_without_stripe_keys_its_endpoints_answer_503(
    box_without_stripe: ServerProcess, path: str
) -> None:
    with httpx.Client(base_url=box_without_stripe.base_url, verify=TLS) as http:
        response = http.post(path, json={"amount_usd": 20})
    assert_envelope(response, 503)


SIGNED_ODDITIES: list[bytes] = [
    b"not json",
    b"[]",
    b"{}",
    b'{"type": "checkout.session.completed"}',
    b'{"id": "evt_1", "object": "event", "type": "checkout.session.completed", "data": {}}',
    b'{"id": "evt_2", "object": "event", "type": "checkout.session.completed",'
    b' "data": {"object": {"id": "cs_test_unknown", "object": "checkout.session"}}}',
    b'{"id": "evt_3", "object": "event", "type": "checkout.session.completed",'
    b' "data": {"object": {"id": 5, "mode": "payment", "metadata": []}}}',
    b'{"id": "evt_4", "object": "event", "type": "customer.created", "data": {"object": {}}}',
]


@pytest.mark.parametrize("payload", SIGNED_ODDITIES)
def test_a_correctly_signed_but_odd_event_is_never_a_5xx(box: Box, payload: bytes) -> None:
    import time

    from tests.fakes.stripe_wire import sign_payload

    signature = sign_payload(payload, box.stripe.webhook_secret, int(time.time()))
    with box.http() as http:
        response = http.post(
            "/api/v1/stripe/webhook", content=payload, headers={"stripe-signature": signature}
        )
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert_envelope(response, response.status_code)


@pytest.mark.parametrize("route", ["/api/v1/customer/usage", "/api/v1/customer/payment"])
def test_both_lists_refuse_a_bad_limit_the_same_way(box: Box, route: str) -> None:
    _, key = box.new_user()
    with box.http(key) as http:
        assert http.get(route, params={"limit": 1}).status_code == 200
        for bad in ("0", "-1", "1.5", "ten", " 5", "\u0663", "100000"):
            answer = http.get(route, params={"limit": bad})
            assert_envelope(answer, 400)
            error = answer.json()["error"]
            assert (error["code"], error.get("param")) == ("invalid_limit", "limit"), bad
        for padded in ("0100", "007", "00000000000000000001"):  # leading zeros: still a number
            assert http.get(route, params={"limit": padded}).status_code == 200, padded
        assert http.get(route, params={"limit": "0000"}).status_code == 400
