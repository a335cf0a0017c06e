"""Responses over an Anthropic provider: the request through both translators gives a valid
Messages API body, and an Anthropic answer through the existing translator then ours gives a
correct Responses answer, with signed thinking handed back intact on the next turn."""

from __future__ import annotations

import json

from openai.types.responses import Response

from codelace_box.providers import adapter_for
from codelace_box.providers.base import SSEEvent, UpstreamTarget
from codelace_box.providers.responses_input import encode_thinking
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


def test_thinking_between_calls_goes_back_where_it_was() -> None:
    """Claude may think between the calls of one turn (interleaved thinking, automatic on its
    adaptive models); the stream gives each thinking its own reasoning item in place, and
    Anthropic refuses the turn's thinking moved ("blocks in the latest assistant message
    cannot be modified"): handed back, every block keeps its place among the calls."""
    t1 = {"type": "thinking", "thinking": "First the files.", "signature": "sig-1"}
    t2 = {"type": "thinking", "thinking": "Then the tests.", "signature": "sig-2"}

    def call(n: int) -> dict:
        return {"type": "function_call", "call_id": f"toolu_{n}", "name": "shell",
                "arguments": "{}"}  # fmt: skip

    def reasoning(block: dict) -> dict:
        return {
            "type": "reasoning",
            "summary": [],
            "encrypted_content": encode_thinking([block], ""),
        }

    request = {
        "model": MODEL,
        "reasoning": {"effort": "high"},
        "tools": [{"type": "function", "name": "shell", "parameters": {"type": "object"}}],
        "input": [
            {"role": "user", "content": "Check."},
            reasoning(t1),
            call(1),
            reasoning(t2),
            call(2),
            {"type": "function_call_output", "call_id": "toolu_1", "output": "a"},
            {"type": "function_call_output", "call_id": "toolu_2", "output": "b"},
        ],
    }
    body = anthropic_body(request)
    assert request_problem(body) is None
    turn = body["messages"][1]["content"]
    assert [(b["type"], b.get("signature") or b.get("id")) for b in turn] == [
        ("thinking", "sig-1"), ("tool_use", "toolu_1"),
        ("thinking", "sig-2"), ("tool_use", "toolu_2"),
    ]  # fmt: skip
    assert body["thinking"]["type"] == "enabled"


def _interleaved_stream() -> list[SSEEvent]:
    """Claude's stream of one turn that thinks, calls, thinks again and calls again."""
    events: list[dict] = [{"type": "message_start", "message": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": UPSTREAM, "content": [],
        "stop_reason": None, "usage": {"input_tokens": 30, "output_tokens": 1}}}]  # fmt: skip
    for i, (thought, call) in enumerate((("Files first.", "toolu_1"), ("Tests next.", "toolu_2"))):
        events += [
            {"type": "content_block_start", "index": 2 * i,
             "content_block": {"type": "thinking", "thinking": "", "signature": ""}},
            {"type": "content_block_delta", "index": 2 * i,
             "delta": {"type": "thinking_delta", "thinking": thought}},
            {"type": "content_block_delta", "index": 2 * i,
             "delta": {"type": "signature_delta", "signature": f"sig-{call}"}},
            {"type": "content_block_stop", "index": 2 * i},
            {"type": "content_block_start", "index": 2 * i + 1,
             "content_block": {"type": "tool_use", "id": call, "name": "shell", "input": {}}},
            {"type": "content_block_delta", "index": 2 * i + 1,
             "delta": {"type": "input_json_delta", "partial_json": "{}"}},
            {"type": "content_block_stop", "index": 2 * i + 1},
        ]  # fmt: skip
    events += [{"type": "message_delta", "delta": {"stop_reason": "tool_use"},
                "usage": {"output_tokens": 40}}, {"type": "message_stop"}]  # fmt: skip
    return [SSEEvent(data=json.dumps(event), event=event["type"]) for event in events]


def test_a_streamed_interleaved_turn_goes_back_in_its_order() -> None:
    request = {
        "model": MODEL, "input": "Check.", "reasoning": {"effort": "high"}, "stream": True,
        "include": ["reasoning.encrypted_content"],
        "tools": [{"type": "function", "name": "shell", "parameters": {"type": "object"}}],
    }  # fmt: skip
    translator = ADAPTER.stream_translator(MODEL)
    chunks = [chunk for event in _interleaved_stream() for chunk in translator.feed(event)]
    events = synthesize(translate_request(request, keep_thinking=True).context,
                        chunks + translator.finish(), translator.usage)  # fmt: skip
    output = [e["item"] for e in events if e["type"] == "response.output_item.done"]
    assert [item["type"] for item in output] == ["reasoning", "function_call"] * 2
    replay(events)
    outputs = [{"type": "function_call_output", "call_id": c, "output": "ok"}
               for c in ("toolu_1", "toolu_2")]  # fmt: skip
    body = anthropic_body(request | {"input": [{"role": "user", "content": "Check."},
                                               *output, *outputs]})  # fmt: skip
    assert request_problem(body) is None
    turn = body["messages"][1]["content"]
    assert [(b["type"], b.get("signature") or b.get("id")) for b in turn] == [
        ("thinking", "sig-toolu_1"), ("tool_use", "toolu_1"),
        ("thinking", "sig-toolu_2"), ("tool_use", "toolu_2"),
    ]  # fmt: skip
