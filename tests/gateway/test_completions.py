"""Chat completions through a real box to a fake OpenAI upstream, with the real openai SDK:
content, usage, exact cost, balance, ledger and usage rows; validation and routing errors;
catalog changes by the CLI seen without a restart; the customer and public endpoints."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import openai
import pytest

from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.gateway.conftest import (
    IN_PRICE,
    MODEL,
    MODEL_MAX_OUTPUT,
    NANOS,
    OUT_PRICE,
    UPSTREAM_MODEL,
    Box,
    BoxFactory,
    cost_nanos,
)
from tests.support import TLS

pytestmark = pytest.mark.timeout(60)
HELLO = [{"role": "user", "content": "Say hello"}]
DEFAULT_PIECES = 5  # "Hello from the fake upstream." streamed word by word


@pytest.fixture(scope="module")
def box(box_factory: BoxFactory) -> Box:
    return box_factory()


def expected_default_cost() -> int:
    return cost_nanos(11, DEFAULT_PIECES, IN_PRICE, OUT_PRICE)


def assert_settled(box: Box, email: str, request_id: str, start: int, cost: int) -> None:
    """Balance moved by exactly `cost`, the ledger says so, the hold is gone, the row agrees."""
    balance, held = box.balance(email)
    assert (balance, held) == (start - cost, 0)
    entries = box.query(
        "SELECT amount_nanos, kind FROM ledger_entry WHERE idempotency_key = ?",
        f"usage:{request_id}",
    )
    assert entries == [(-cost, "usage")]
    assert box.query("SELECT COUNT(*) FROM hold WHERE request_id = ?", request_id) == [(0,)]
    row = box.usage_row(request_id)
    assert row["cost_nanos"] == cost
    assert row["input_per_1m_nanos"] == 2_500_000_000
    assert row["output_per_1m_nanos"] == 10_000_000_000


def test_non_streaming_sync_sdk_exact_cost(box: Box, fake: FakeOpenAI) -> None:
    email, key = box.new_user("5")
    start = box.balance(email)[0]
    raw = box.sdk(key).chat.completions.with_raw_response.create(model=MODEL, messages=HELLO)
    completion = raw.parse()
    cost = expected_default_cost()
    assert completion.choices[0].message.content == "Hello from the fake upstream."
    assert completion.model == MODEL
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (11, 5)
    assert completion.usage.model_extra is not None
    assert completion.usage.model_extra["cost_usd"] == pytest.approx(cost / NANOS, abs=0)
    assert raw.headers["x-codelace-cost-usd"] == "0.0000775"
    assert cost == 77_500
    request_id = raw.headers["x-request-id"]
    assert_settled(box, email, request_id, start, cost)
    row = box.usage_row(request_id)
    assert (row["status"], row["stream"], row["estimated"]) == ("ok", 0, 0)
    assert (row["model"], row["upstream_model"], row["provider"]) == (MODEL, UPSTREAM_MODEL, "fake")
    sent = fake.requests[-1]
    assert sent.body["model"] == UPSTREAM_MODEL
    assert sent.api_key == "sk-fake-key-0001"
    assert sent.body["max_tokens"] == MODEL_MAX_OUTPUT  # the cap reserved for
    assert "stream_options" not in sent.body


def test_streaming_sync_sdk_with_usage_chunk(box: Box, fake: FakeOpenAI) -> None:
    email, key = box.new_user("5")
    start = box.balance(email)[0]
    raw = box.sdk(key).chat.completions.with_raw_response.create(
        model=MODEL, messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(raw.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from the fake upstream."
    assert {c.model for c in chunks} == {MODEL}
    final = chunks[-1]
    assert final.choices == [] and final.usage is not None
    assert (final.usage.prompt_tokens, final.usage.completion_tokens) == (11, 5)
    cost = expected_default_cost()
    assert final.usage.model_extra is not None
    assert final.usage.model_extra["cost_usd"] == pytest.approx(cost / NANOS, abs=0)
    assert [c for c in chunks if c.usage is not None] == [final]
    assert_settled(box, email, raw.headers["x-request-id"], start, cost)
    assert box.usage_row(raw.headers["x-request-id"])["stream"] == 1
    assert fake.requests[-1].body["stream_options"] == {"include_usage": True}


def test_streaming_without_usage_request_still_charges(box: Box, fake: FakeOpenAI) -> None:
    email, key = box.new_user("5")
    start = box.balance(email)[0]
    with (
        box.http(key) as http,
        http.stream(
            "POST", "/v1/chat/completions", json={"model": MODEL, "messages": HELLO, "stream": True}
        ) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        body = response.read()
    events = [e for e in body.split(b"\n\n") if e]
    assert events[-1] == b"data: [DONE]"
    chunks = [json.loads(e.removeprefix(b"data: ")) for e in events[:-1]]
    assert all(c["choices"] for c in chunks), "no usage chunk unless the client asked"
    assert fake.requests[-1].body["stream_options"] == {"include_usage": True}
    assert_settled(box, email, response.headers["x-request-id"], start, expected_default_cost())


async def test_async_sdk_streaming_and_not(box: Box, fake: FakeOpenAI) -> None:
    email, key = box.new_user("5")
    start = box.balance(email)[0]
    client = box.async_sdk(key)
    completion = await client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=40)
    assert completion.choices[0].message.content == "Hello from the fake upstream."
    assert fake.requests[-1].body["max_tokens"] == 40
    assert "max_completion_tokens" not in fake.requests[-1].body
    fake.push(Reply(pieces=["un", "deux", "trois"], prompt_tokens=20))
    stream = await client.chat.completions.create(
        model=MODEL, messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    pieces = [c.choices[0].delta.content async for c in stream if c.choices]
    assert "".join(p or "" for p in pieces) == "undeuxtrois"
    await client.close()
    spent = expected_default_cost() + cost_nanos(20, 3, IN_PRICE, OUT_PRICE)
    assert box.balance(email) == (start - spent, 0)


def test_tool_calls_pass_through_both_ways(box: Box, fake: FakeOpenAI) -> None:
    _, key = box.new_user("5")
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    call = {"name": "get_weather", "arguments": '{"city": "Paris", "unit": "celsius"}'}
    fake.push(Reply(tool_calls=[call]), Reply(tool_calls=[call]))
    client = box.sdk(key)
    options: dict[str, Any] = {"tools": tools, "tool_choice": "auto", "temperature": 0.2, "seed": 7}
    done = client.chat.completions.create(model=MODEL, messages=HELLO, **options)
    assert done.choices[0].finish_reason == "tool_calls"
    made = done.choices[0].message.tool_calls
    assert made is not None and made[0].function.arguments == call["arguments"]
    sent = fake.requests[-1].body
    assert (sent["tools"], sent["tool_choice"], sent["temperature"], sent["seed"]) == (
        tools, "auto", 0.2, 7,
    )  # fmt: skip
    chunks = list(
        client.chat.completions.create(model=MODEL, messages=HELLO, stream=True, **options)
    )
    arguments = "".join(
        (c.choices[0].delta.tool_calls or [])[0].function.arguments or ""  # type: ignore[union-attr]
        for c in chunks
        if c.choices and c.choices[0].delta.tool_calls
    )
    assert arguments == call["arguments"]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_insufficient_credit_is_402_and_upstream_never_called(box: Box, fake: FakeOpenAI) -> None:
    email, key = box.new_user("0.005")  # the worst case at the model's 1,000-token cap: ~$0.0103
    client = box.sdk(key)
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model=MODEL, messages=HELLO)
    assert caught.value.status_code == 402
    assert caught.value.body["code"] == "insufficient_credits"  # type: ignore[index]
    assert fake.requests == []
    assert box.balance(email) == (5_000_000, 0)
    small = client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=10)
    assert small.choices[0].message.content
    assert len(fake.requests) == 1


def test_a_stream_short_of_credit_is_a_402_json_error_and_upstream_never_called(
    box: Box, fake: FakeOpenAI
) -> None:
    """A stream's admission is queued with its opening task behind it (Gateway.open_stream):
    its refusal still comes before any byte, as the plain JSON error with its status, not a
    stream, and the upstream is never called."""
    email, key = box.new_user("0.005")  # the worst case at the model's 1,000-token cap: ~$0.0103
    with box.http(key) as http:
        answer = http.post("/v1/chat/completions",
                           json={"model": MODEL, "messages": HELLO, "stream": True})  # fmt: skip
    assert answer.status_code == 402, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.json()["error"]["code"] == "insufficient_credits"
    assert fake.requests == []
    assert box.balance(email) == (5_000_000, 0)


def test_request_errors_use_the_envelope(box: Box, fake: FakeOpenAI) -> None:
    _, key = box.new_user("1")
    cases: list[tuple[Any, int, str]] = [
        (b"{not json", 400, "invalid_json"),
        ({"messages": HELLO}, 400, "invalid_request"),
        ({"model": MODEL, "messages": []}, 400, "invalid_request"),
        ({"model": MODEL, "messages": [{"role": "robot", "content": "x"}]}, 400, "invalid_request"),
        ({"model": MODEL, "messages": HELLO, "temperature": "hot"}, 400, "invalid_request"),
        ({"model": MODEL, "messages": HELLO, "max_tokens": 0}, 400, "invalid_request"),
        ({"model": MODEL, "messages": HELLO, "stream": "yes"}, 400, "invalid_request"),
        ({"model": "gpt-4o", "messages": HELLO}, 400, "invalid_model"),
        ({"model": "fake/no-such-model", "messages": HELLO}, 404, "model_not_found"),
    ]
    with box.http(key) as http:
        for body, status, code in cases:
            sent = {"content": body} if isinstance(body, bytes) else {"json": body}
            response = http.post("/v1/chat/completions", **sent)
            assert response.status_code == status, (body, response.text)
            error = response.json()["error"]
            assert error["code"] == code and error["message"] and error["type"]
            assert response.headers["x-request-id"].startswith("req_")
    with box.http() as anonymous:
        response = anonymous.post("/v1/chat/completions", json={"model": MODEL, "messages": HELLO})
        assert response.status_code == 401
        assert response.json()["error"]["type"] == "authentication_error"
    assert fake.requests == []


def test_catalog_changes_apply_within_a_second(box: Box, fake: FakeOpenAI) -> None:
    email, key = box.new_user("5")
    box.cli("models", "set", "fake/changing", "--input-per-1m", "1", "--output-per-1m", "1",
            "--provider", "fake", "--upstream-model", "gpt-x")  # fmt: skip
    time.sleep(1.0)
    client = box.sdk(key)
    before = box.balance(email)[0]
    client.chat.completions.create(model="fake/changing", messages=HELLO)
    assert box.balance(email)[0] == before - cost_nanos(11, 5, "1", "1")
    box.cli("models", "set", "fake/changing", "--input-per-1m", "3", "--output-per-1m", "7",
            "--provider", "fake", "--upstream-model", "gpt-y")  # fmt: skip
    time.sleep(1.0)
    before = box.balance(email)[0]
    client.chat.completions.create(model="fake/changing", messages=HELLO)
    assert box.balance(email)[0] == before - cost_nanos(11, 5, "3", "7")
    assert fake.requests[-1].body["model"] == "gpt-y"
    box.cli("models", "disable", "fake/changing")
    time.sleep(1.0)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="fake/changing", messages=HELLO)
    with box.http() as anonymous:
        listed = [m["id"] for m in anonymous.get("/v1/models").json()["data"]]
    assert "fake/changing" not in listed and MODEL in listed


def test_disabled_provider_is_503(box: Box, fake: FakeOpenAI) -> None:
    _, key = box.new_user("1")
    box.cli("providers", "add", "spare", "--kind", "openai", "--base-url", fake.base_url,
            "--key", "sk-spare-key-0001")  # fmt: skip
    box.cli("models", "set", "spare/m", "--input-per-1m", "1", "--output-per-1m", "1")
    box.cli("providers", "disable", "spare")
    time.sleep(1.0)
    with pytest.raises(openai.APIStatusError) as caught:
        box.sdk(key).chat.completions.create(model="spare/m", messages=HELLO)
    assert caught.value.status_code == 503
    assert fake.requests == []


def test_public_pricing_lists_only_models_that_can_be_served(box: Box, fake: FakeOpenAI) -> None:
    """As /v1/models (and the portal's model table, which joins the two): a model whose
    provider is disabled is not offered, and is again once the provider is enabled."""
    box.cli("providers", "add", "resting", "--kind", "openai", "--base-url", fake.base_url,
            "--key", "sk-resting-key-0001")  # fmt: skip
    box.cli("models", "set", "resting/m", "--input-per-1m", "1", "--output-per-1m", "1")

    def offered() -> tuple[set[str], set[str]]:
        with box.http() as anonymous:
            listed = {m["id"] for m in anonymous.get("/v1/models").json()["data"]}
            priced = {p["model"] for p in anonymous.get("/api/v1/public/pricing").json()}
        return listed, priced

    time.sleep(1.0)  # catalog changes apply within a second
    assert all("resting/m" in names for names in offered())
    box.cli("providers", "disable", "resting")
    time.sleep(1.0)
    listed, priced = offered()
    assert "resting/m" not in priced and "resting/m" not in listed
    assert MODEL in priced and priced == listed
    box.cli("providers", "enable", "resting")
    time.sleep(1.0)
    assert all("resting/m" in names for names in offered())


def test_customer_balance_and_usage(box: Box, fake: FakeOpenAI) -> None:
    _, key = box.new_user("2")
    client = box.sdk(key)
    ids = []
    for _ in range(3):
        raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=HELLO)
        ids.append(raw.headers["x-request-id"])
    fake.push(
        Reply(status=400, error={"message": "bad temperature", "type": "invalid_request_error"})
    )
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=MODEL, messages=HELLO)
    with box.http(key) as http:
        balance = http.get("/api/v1/customer/balance").json()
        usage = http.get("/api/v1/customer/usage").json()
        limited = http.get("/api/v1/customer/usage", params={"limit": 2}).json()
        bad = http.get("/api/v1/customer/usage", params={"limit": "lots"})
    each = expected_default_cost()
    assert balance == {"credit_balance_usd": (2 * NANOS - 3 * each) / NANOS}
    assert usage["request_count"] == 4
    assert (usage["total_input_token"], usage["total_output_token"]) == (33, 15)
    assert usage["total_cost_usd"] == 3 * each / NANOS
    recent = usage["recent_requests"]
    assert [r["id"] for r in recent[1:]] == ids[::-1]
    assert recent[0]["status"] == "error" and recent[0]["cost_usd"] == 0
    assert set(recent[1]) == {
        "id", "model", "input_tokens", "output_tokens", "cost_usd", "status", "stream",
        "duration_ms", "created_at", "cache_read_tokens", "cache_write_tokens",
    }  # fmt: skip
    assert recent[1]["created_at"].endswith("Z") and recent[1]["model"] == MODEL
    assert len(limited["recent_requests"]) == 2
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "limit"


def test_public_models_and_pricing(box: Box) -> None:
    with httpx.Client(base_url=box.url, verify=TLS) as http:
        models = http.get("/v1/models").json()
        pricing = http.get("/api/v1/public/pricing").json()
    assert models["object"] == "list"
    entry = next(m for m in models["data"] if m["id"] == MODEL)
    assert entry["object"] == "model" and entry["owned_by"] == "fake"
    assert abs(entry["created"] - time.time()) < 3600
    assert {"model": MODEL, "input_per_1m": 2.5, "output_per_1m": 10.0,
            "cache_read_per_1m": 2.5, "cache_write_per_1m": 2.5,
            "cache_write_1h_per_1m": 2.5} in pricing  # fmt: skip
    client = box.sdk("cl_unused")
    assert MODEL in [m.id for m in client.models.list().data]
    assert client.models.retrieve(MODEL).owned_by == "fake"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("fake/nothing-here")


def test_doctor_agrees_with_every_balance(box: Box) -> None:
    box.cli("doctor")  # exits non-zero on any balance/ledger/holds mismatch
    assert box.query("SELECT COUNT(*) FROM hold") == [(0,)]
    assert box.query('SELECT COALESCE(SUM(held_nanos), 0) FROM "user"') == [(0,)]
