"""Responses over an Anthropic provider: the request through both translators gives a valid
Messages API body, and an Anthropic answer through the existing translator then ours gives a
correct Responses answer, with signed thinking handed back intact on the next turn."""

from __future__ import annotations

import json

from openai.types.responses import Response

from codelace_box.providers import adapter_for
from codelace_box.providers.base import UpstreamTarget
from codelace_box.providers.responses_request import translate_request
from codelace_box.providers.responses_response import translate_completion
from tests.anthropic.wire import load_json as load_anthropic_json
from tests.fakes.anthropic_validation import request_problem
from tests.responses.wire import MODEL, chat_chunks, load_json, replay, synthesize

ADAPTER = adapter_for("anthropic")
UPSTREAM = "claude-opus-4-6"


def anthropic_body(responses_body: dict, *, stream: bool = False) -> dict:
    chat = translate_request(responses_body, keep_thinking=True).body
    ADAPTER.check_request(chat)
    return ADAPTER.build_request(
        chat,
        UpstreamTarget(
            upstream_model=UPSTREAM,
            api_key="k",
            base_url="",
            stream=stream,
            default_max_tokens=32000,
        ),
    ).json_body


def test_codex_request_gives_a_valid_messages_body() -> None:
    codex = load_json("codex_request.json")
    body = anthropic_body(codex, stream=True)
    assert request_problem(body) is None
    assert [block["text"][:12] for block in body["system"]] == ["You are Code", "<permissions"]
    assert [t["name"] for t in body["tools"]] == [
        "shell",
        "update_plan",
        "apply_patch",
        "view_image",
    ]
    assert body["tools"][2]["input_schema"]["required"] == ["input"]
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 16000}
    assert body["stream"] is True
    patch = body["messages"][1]["content"][0]
    assert patch == {
        "type": "tool_use",
        "id": "call_apply_01",
        "name": "apply_patch",
        "input": {"input": codex["input"][4]["input"]},
    }


def test_parallel_tool_stream_through_both_translators() -> None:
    request = {
        "model": MODEL,
        "input": "Weather in Paris and London?",
        "stream": True,
        "tools": [
            {
                "type": "function",
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
            }
        ],
    }
    context = translate_request(request).context
    chunks, upstream = chat_chunks("anthropic", "stream_parallel_tools.sse")
    events = synthesize(context, chunks, upstream.usage)
    final = replay(events)
    kinds = [item.type for item in final.output]
    assert kinds == ["message", "function_call", "function_call"]
    assert final.output_text == "I'll check both cities at once."
    calls = [item for item in final.output if item.type == "function_call"]
    assert calls[0].call_id == "toolu_01A09q90qw90lq917835lq9"
    assert json.loads(calls[0].arguments) == {"location": "Paris, France"}
    usage = events[-1]["response"]["usage"]
    assert usage["input_tokens_details"]["cached_tokens"] == 1200
    assert usage["input_tokens"] == upstream.usage.input_tokens  # type: ignore[union-attr]
    seqs = [e["sequence_number"] for e in events]
    assert seqs == sorted(seqs) == list(range(len(events)))


def test_signed_thinking_round_trip() -> None:
    request = {
        "model": MODEL,
        "input": "Think, then answer.",
        "reasoning": {"effort": "high"},
        "include": ["reasoning.encrypted_content"],
        "stream": True,
    }
    context = translate_request(request, keep_thinking=True).context
    chunks, upstream = chat_chunks("anthropic", "stream_thinking.sse")
    events = synthesize(context, chunks, upstream.usage)
    done = [e["item"] for e in events if e["type"] == "response.output_item.done"]
    reasoning, message = done
    assert reasoning["type"] == "reasoning" and reasoning["encrypted_content"]
    assert reasoning["content"][0]["text"]
    replay(events)
    # Codex hands the items back on the next request: the signed block reaches Anthropic.
    follow_up = request | {
        "input": [
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "Think, then answer."}],
            },
            {
                "type": "reasoning",
                "summary": [],
                "encrypted_content": reasoning["encrypted_content"],
            },
            {"type": "message", "role": "assistant", "content": message["content"]},
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "And now?"}],
            },
        ]
    }
    body = anthropic_body(follow_up)
    assert request_problem(body) is None
    thinking = body["messages"][1]["content"][0]
    assert thinking["type"] == "thinking" and thinking["signature"]
    assert thinking["thinking"] == reasoning["content"][0]["text"]


def test_non_streamed_thinking_message() -> None:
    request = {"model": MODEL, "input": "Analyse.", "include": ["reasoning.encrypted_content"]}
    context = translate_request(request, keep_thinking=True).context
    completion, usage = ADAPTER.parse_response(load_anthropic_json("message_thinking.json"), MODEL)
    body = translate_completion(completion, usage, context)
    reasoning, message = body["output"]
    assert reasoning["content"] == [
        {"type": "reasoning_text", "text": "Let me analyze this step by step..."}
    ]
    assert reasoning["encrypted_content"].startswith("codelace-thinking-v2:")
    assert message["content"][0]["text"] == "Based on my analysis..."
    assert body["status"] == "incomplete"  # Anthropic stopped at max_tokens
    assert body["usage"]["output_tokens_details"] == {"reasoning_tokens": 1900}
    Response.model_validate(body)
    without = translate_completion(
        completion, usage, translate_request(request | {"include": []}).context
    )
    assert "encrypted_content" not in without["output"][0]
