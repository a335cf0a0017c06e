"""docs/http-api.md "Inference", from the outside: /v1/models, chat completions with the real
`openai` SDK and raw HTTP, streams byte for byte, usage with cost_usd, the cost header,
pass-through."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.acceptance.conftest import CHEAP_MODEL, MODEL, UPSTREAM_MODEL, Box
from tests.fakes.openai_upstream import FakeOpenAI, Reply

pytestmark = pytest.mark.timeout(60)
HI = [{"role": "user", "content": "hi"}]
USAGE_INTS = ("prompt_tokens", "completion_tokens", "total_tokens")


def sse_data(response: httpx.Response) -> list[str]:
    """The `data:` payloads of an SSE body, in order."""
    assert response.text.endswith("\n\n"), "an SSE body ends with a blank line"
    return [line[6:] for line in response.text.split("\n") if line.startswith("data: ")]


def usage_cost(usage: dict[str, Any]) -> Decimal:
    for name in USAGE_INTS:
        assert type(usage[name]) is int, (name, usage)
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    cost = usage["cost_usd"]
    assert isinstance(cost, int | float) and not isinstance(cost, bool) and cost > 0
    return Decimal(str(cost))


def test_models_lists_the_enabled_catalog_in_openai_shape_without_a_key(box: Box) -> None:
    with box.http() as http:
        response = http.get("/v1/models")
    assert response.status_code == 200 and response.headers.get("x-request-id")
    body = response.json()
    assert body["object"] == "list"
    ids = [m["id"] for m in body["data"]]
    assert {MODEL, CHEAP_MODEL} <= set(ids)
    for model in body["data"]:
        assert set(model) >= {"id", "object", "created", "owned_by"}
        assert model["object"] == "model"
        assert type(model["created"]) is int and model["created"] > 1_600_000_000
        assert isinstance(model["owned_by"], str) and model["owned_by"]


def test_a_disabled_model_leaves_the_list_and_answers_404(box: Box) -> None:
    box.cli("models", "set", "fake/retired", "--input-per-1m", "1", "--output-per-1m", "1")
    box.cli("models", "disable", "fake/retired")
    with box.http(box.shared_key) as http:
        listed = [m["id"] for m in http.get("/v1/models").json()["data"]]
        body = {"model": "fake/retired", "messages": HI}
        response = http.post("/v1/chat/completions", json=body)
    assert "fake/retired" not in listed
    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == "model_not_found"  # the model, not the route


def test_the_sdk_lists_and_retrieves_models(box: Box) -> None:
    client = box.sdk(box.shared_key)
    assert MODEL in [m.id for m in client.models.list()]
    model = client.models.retrieve(MODEL)
    assert model.id == MODEL and model.object == "model"


def test_retrieving_no_model_id_says_so(box: Box) -> None:
    """`GET /v1/models/` (an id left empty by a script) said "the model  does not exist"."""
    with box.http(box.shared_key) as http:
        response = http.get("/v1/models/")
    assert response.status_code == 404, response.text
    error = response.json()["error"]
    assert error["code"] == "model_not_found"
    assert error["message"] == "no model id given: GET /v1/models lists the models"


def test_a_completion_with_the_sdk_carries_usage_cost_and_the_cost_header(
    box: Box, upstream: FakeOpenAI
) -> None:
    upstream.push(Reply(content="Hi there", prompt_tokens=1000, completion_tokens=100))
    client = box.sdk(box.shared_key)
    raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=HI)  # type: ignore[arg-type]
    completion = raw.parse()
    assert completion.choices[0].message.content == "Hi there"
    assert completion.model == MODEL
    assert raw.headers.get("x-request-id")
    body = json.loads(raw.http_response.text)
    cost = usage_cost(body["usage"])
    assert cost == Decimal("0.0035")  # 1000 * 2.5/1M + 100 * 10/1M
    assert Decimal(raw.headers["x-codelace-cost-usd"]) == cost
    assert "e" not in raw.headers["x-codelace-cost-usd"].lower()
    assert upstream.requests[-1].body["model"] == UPSTREAM_MODEL


def test_the_request_shows_in_customer_usage_with_the_same_cost(
    box: Box, upstream: FakeOpenAI
) -> None:
    _, key = box.new_user()
    upstream.push(Reply(prompt_tokens=20, completion_tokens=7))
    with box.http(key) as http:
        done = http.post("/v1/chat/completions", json={"model": MODEL, "messages": HI})
        usage = http.get("/api/v1/customer/usage").json()
    row = usage["recent_requests"][0]
    assert row["id"] == done.headers["x-request-id"]
    assert (row["input_tokens"], row["output_tokens"]) == (20, 7)
    assert Decimal(str(row["cost_usd"])) == Decimal(done.headers["x-codelace-cost-usd"])
    assert Decimal(str(row["cost_usd"])) == Decimal("0.00012")  # 20 * 2.5/1M + 7 * 10/1M
    assert row["model"] == MODEL and row["stream"] is False and row["status"] == "ok"


def test_a_stream_is_sse_chunks_then_done(box: Box, upstream: FakeOpenAI) -> None:
    upstream.push(Reply(content="one two three"))
    body = {"model": MODEL, "messages": HI, "stream": True}
    with box.http(box.shared_key) as http:
        response = http.post("/v1/chat/completions", json=body)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers.get("x-request-id")
    data = sse_data(response)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == MODEL for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "one two three"
    assert all("usage" not in c for c in chunks), "as OpenAI: no usage key unless asked for"
    assert "x-codelace-cost-usd" not in response.headers


def test_include_usage_adds_one_usage_chunk_with_cost_before_done(
    box: Box, upstream: FakeOpenAI
) -> None:
    upstream.push(Reply(content="a b", prompt_tokens=40, completion_tokens=2))
    body = {
        "model": MODEL,
        "messages": HI,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    with box.http(box.shared_key) as http:
        response = http.post("/v1/chat/completions", json=body)
    data = sse_data(response)
    assert data[-1] == "[DONE]"
    last = json.loads(data[-2])
    assert last["choices"] == [] and last["object"] == "chat.completion.chunk"
    assert usage_cost(last["usage"]) == Decimal("0.00012")  # 40 * 2.5/1M + 2 * 10/1M
    with_usage = [d for d in data[:-1] if json.loads(d).get("usage")]
    assert len(with_usage) == 1


def test_the_sdk_streams_and_reads_the_usage(box: Box, upstream: FakeOpenAI) -> None:
    upstream.push(Reply(content="x y z"))
    client = box.sdk(box.shared_key)
    stream = client.chat.completions.create(
        model=MODEL,
        messages=HI,  # type: ignore[arg-type]
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "x y z"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 3


PASS_THROUGH: dict[str, Any] = {
    "temperature": 0.3,
    "top_p": 0.9,
    "max_tokens": 50,
    "max_completion_tokens": 60,
    "n": 2,
    "seed": 1234,
    "stop": ["\n\n", "END"],
    "user": "user-42",
    "response_format": {"type": "json_object"},
    "presence_penalty": 0.1,
    "frequency_penalty": 0.2,
    "logprobs": True,
    "top_logprobs": 2,
    "tool_choice": "auto",
    "parallel_tool_calls": False,
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ],
}


def test_openai_parameters_pass_through_to_the_upstream(box: Box, upstream: FakeOpenAI) -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    messages = [{"role": "user", "content": [{"type": "text", "text": "what?"}, image]}]
    with box.http(box.shared_key) as http:
        body = {"model": MODEL, "messages": messages, **PASS_THROUGH}
        response = http.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    sent = upstream.requests[-1].body
    for name, value in PASS_THROUGH.items():
        assert sent[name] == value, name
    assert sent["messages"] == messages


def test_tool_calls_come_back_in_openai_shape(box: Box, upstream: FakeOpenAI) -> None:
    upstream.push(Reply(tool_calls=[{"name": "get_weather", "arguments": '{"city":"Oslo"}'}]))
    client = box.sdk(box.shared_key)
    completion = client.chat.completions.create(
        model=MODEL,
        messages=HI,  # type: ignore[arg-type]
        tools=PASS_THROUGH["tools"],
    )
    call = completion.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"city": "Oslo"}  # type: ignore[union-attr]
    assert completion.choices[0].finish_reason == "tool_calls"


def test_one_token_of_the_cheapest_model_is_not_rounded_away(
    box: Box, upstream: FakeOpenAI
) -> None:
    upstream.push(Reply(prompt_tokens=1, completion_tokens=0, content=""))
    with box.http(box.shared_key) as http:
        response = http.post("/v1/chat/completions", json={"model": CHEAP_MODEL, "messages": HI})
    assert response.status_code == 200, response.text
    assert Decimal(response.headers["x-codelace-cost-usd"]) == Decimal("0.00000001")
    assert Decimal(str(response.json()["usage"]["cost_usd"])) == Decimal("0.00000001")
