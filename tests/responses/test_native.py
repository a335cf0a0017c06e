"""Native Responses upstreams: events relayed relabelled, usage billed, the terminal event held
back for the cost, failures ending the stream."""

from __future__ import annotations

import json

import pytest

from codelace_box.errors import UpstreamError
from codelace_box.providers.base import SSEEvent, UpstreamStreamError
from codelace_box.providers.responses_native import NativeResponsesStream, parse_native_response
from tests.anthropic.wire import parse_sse
from tests.responses.wire import DATA, MODEL, replay


def test_native_stream_relayed_with_cost() -> None:
    relay = NativeResponsesStream(MODEL)
    upstream = parse_sse((DATA / "native_stream_text.sse").read_text())
    events = [event for sse in upstream for event in relay.feed(sse)]
    assert [e["type"] for e in events][-1] == "response.output_item.done"  # completed held back
    assert relay.finished and relay.usage is not None
    assert (relay.usage.input_tokens, relay.usage.output_tokens) == (37, 11)
    assert relay.output_chars == len("Hi there!")
    events += relay.final_events({"cost_usd": "0.000163"})
    assert events[-1]["type"] == "response.completed"
    assert events[-1]["response"]["usage"]["cost_usd"] == "0.000163"
    assert {e["response"]["model"] for e in events if "response" in e} == {MODEL}
    assert [e["sequence_number"] for e in events] == list(range(10))
    assert replay(events).output_text == "Hi there!"


def test_native_failure_ends_the_stream() -> None:
    relay = NativeResponsesStream(MODEL)
    failed = {
        "type": "response.failed",
        "sequence_number": 3,
        "response": {
            "id": "resp_1",
            "object": "response",
            "status": "failed",
            "output": [],
            "error": {"code": "server_error", "message": "The model failed."},
        },
    }
    with pytest.raises(UpstreamStreamError) as caught:
        relay.feed(SSEEvent(json.dumps(failed), "response.failed"))
    assert (caught.value.code, caught.value.message) == ("server_error", "The model failed.")
    error = {
        "type": "error",
        "sequence_number": 4,
        "code": "rate_limit_exceeded",
        "message": "Slow down",
        "param": None,
    }
    with pytest.raises(UpstreamStreamError):
        relay.feed(SSEEvent(json.dumps(error), "error"))
    assert not relay.finished


def test_native_answer_relabelled_and_billed() -> None:
    upstream = parse_sse((DATA / "native_stream_text.sse").read_text())
    final = json.loads(upstream[-1].data)["response"]
    body, usage = parse_native_response(final, MODEL)
    assert body["model"] == MODEL and (usage.input_tokens, usage.output_tokens) == (37, 11)
    with pytest.raises(UpstreamError):
        parse_native_response(
            {"object": "response", "output": [], "status": "failed", "error": {"message": "boom"}},
            MODEL,
        )


def test_native_body_checked_stateless_and_without_hosted_tools() -> None:
    from codelace_box.errors import InvalidRequest
    from codelace_box.providers.responses_native import native_body
    from tests.responses.wire import load_json

    codex = load_json("codex_request.json")
    body = native_body(codex, upstream_model="gpt-5.1-codex-2025", stream=True)
    assert body["model"] == "gpt-5.1-codex-2025" and body["store"] is False
    assert [t["type"] for t in body["tools"]] == ["function", "function", "custom", "function"]
    assert body["include"] == ["reasoning.encrypted_content"]
    assert body["input"] == codex["input"]  # OpenAI's encrypted reasoning goes back as is
    with pytest.raises(InvalidRequest):
        native_body(codex | {"previous_response_id": "resp_1"}, upstream_model="m", stream=True)


def test_an_additional_tools_item_goes_native_without_hosted_tools() -> None:
    """Codex's code mode declares its tools in an `additional_tools` input item (and sends
    `reasoning.context`): a native upstream gets both as sent, but for the hosted tools the box
    drops from `tools` (they would bill beyond the token prices), there too."""
    from codelace_box.providers.responses_native import native_body

    exec_tool = {"type": "custom", "name": "exec", "description": "Run JavaScript."}
    tools = [{"type": "namespace", "name": "functions", "description": "", "tools": [exec_tool]},
             {"type": "web_search"}]  # fmt: skip
    item = {"type": "additional_tools", "id": "at_1", "role": "developer", "tools": tools}
    codex = {"model": "gpt-6.2-sol", "input": [item, {"role": "user", "content": "Hi"}],
             "reasoning": {"effort": "low", "context": "all_turns"}}  # fmt: skip
    body = native_body(codex, upstream_model="gpt-6.2-sol", stream=True)
    assert body["input"][0] == item | {"tools": tools[:1]}
    assert body["reasoning"] == codex["reasoning"]
