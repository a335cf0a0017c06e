"""Recorded Anthropic SSE streams -> OpenAI chat.completion.chunk dicts, event by event."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk

from codelace_box.providers import adapter_for
from codelace_box.providers.base import SSEEvent, StreamTranslator, UpstreamStreamError
from tests.anthropic.wire import load_sse

ADAPTER = adapter_for("anthropic")
MODEL = "anthropic/claude-opus-4.6"


def translate(name: str) -> tuple[StreamTranslator, list[list[dict[str, Any]]]]:
    """Feed a recorded stream; the chunks each event produced, in order."""
    translator = ADAPTER.stream_translator(MODEL)
    per_event = [translator.feed(event) for event in load_sse(name)]
    per_event.append(translator.finish())
    return translator, per_event


def deltas(per_event: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [chunk["choices"][0]["delta"] for chunks in per_event for chunk in chunks]


def assemble_tool_calls(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tool calls as an OpenAI SDK client accumulates them from deltas."""
    calls: dict[int, dict[str, Any]] = {}
    for delta in chunks:
        for part in delta.get("tool_calls", []):
            call = calls.setdefault(part["index"], {"id": None, "name": "", "arguments": ""})
            call["id"] = part.get("id", call["id"])
            call["name"] += part.get("function", {}).get("name", "")
            call["arguments"] += part.get("function", {}).get("arguments", "")
    return [calls[i] for i in sorted(calls)]


def test_basic_stream_chunk_by_chunk() -> None:
    translator, per_event = translate("stream_basic.sse")
    # message_start, block start, ping, 2 text deltas, block stop, message_delta, stop, finish()
    assert [len(chunks) for chunks in per_event] == [1, 0, 0, 1, 1, 0, 1, 0, 0]
    chunks = [chunk for chunks in per_event for chunk in chunks]
    assert {c["id"] for c in chunks} == {"chatcmpl-msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY"}
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert {c["model"] for c in chunks} == {MODEL}
    assert [c["choices"][0]["delta"] for c in chunks] == [
        {"role": "assistant", "content": ""},
        {"content": "Hello"},
        {"content": "!"},
        {},
    ]
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, None, None, "stop"]
    assert translator.finished
    assert translator.usage is not None
    assert (translator.usage.input_tokens, translator.usage.output_tokens) == (25, 15)
    assert translator.input_tokens_seen == 25
    assert translator.output_chars == len("Hello!")


def test_tool_use_stream() -> None:
    translator, per_event = translate("stream_tool_use.sse")
    chunks = deltas(per_event)
    text = "".join(d.get("content") or "" for d in chunks)
    assert text == "Okay, let's check the weather for San Francisco, CA:"
    start = next(d for d in chunks if "tool_calls" in d)
    assert start == {
        "tool_calls": [
            {
                "index": 0,
                "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
                "type": "function",
                "function": {"name": "get_weather", "arguments": ""},
            }
        ]
    }
    [call] = assemble_tool_calls(chunks)
    assert json.loads(call["arguments"]) == {"location": "San Francisco, CA", "unit": "fahrenheit"}
    # the empty first partial_json gives no chunk; the eight fragments give one each
    assert sum(1 for d in chunks if "tool_calls" in d) == 1 + 8
    assert per_event[-3][0]["choices"][0]["finish_reason"] == "tool_calls"
    assert translator.usage is not None
    assert (translator.usage.input_tokens, translator.usage.output_tokens) == (472, 89)


def test_parallel_tool_calls_stream_with_cache_reads() -> None:
    translator, per_event = translate("stream_parallel_tools.sse")
    chunks = deltas(per_event)
    calls = assemble_tool_calls(chunks)
    assert [(c["id"], c["name"]) for c in calls] == [
        ("toolu_01A09q90qw90lq917835lq9", "get_weather"),
        ("toolu_01B7pZ2rLm4nQ8sT6vW3xY5c", "get_time"),
    ]
    assert json.loads(calls[0]["arguments"]) == {"location": "Paris, France"}
    assert json.loads(calls[1]["arguments"]) == {"timezone": "Europe/Paris"}
    starts = [
        d["tool_calls"][0] for d in chunks if "tool_calls" in d and "id" in d["tool_calls"][0]
    ]
    assert [s["index"] for s in starts] == [0, 1]
    assert translator.usage is not None
    assert translator.usage.input_tokens == 640 + 1200
    assert translator.usage.output_tokens == 96
    assert translator.usage.openai_usage()["prompt_tokens_details"] == {"cached_tokens": 1200}


def test_thinking_stream() -> None:
    translator, per_event = translate("stream_thinking.sse")
    chunks = deltas(per_event)
    reasoning = "".join(d.get("reasoning_content", "") for d in chunks)
    assert reasoning.startswith("I need to find the GCD of 1071 and 462")
    assert reasoning.endswith("so GCD(1071, 462) = 21.")
    [signed] = [d["thinking_blocks"] for d in chunks if "thinking_blocks" in d]
    assert signed == [
        {
            "type": "thinking",
            "thinking": reasoning,
            "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds...",
            "index": 0,
        }
    ]
    content = "".join(d.get("content") or "" for d in chunks)
    assert content == "The greatest common divisor of 1071 and 462 is **21**."
    assert translator.finished
    # this documented example carries no usage at all: leave it to the gateway's estimate
    assert translator.usage is None
    assert translator.output_chars == len(reasoning) + len(content)


def test_thinking_stream_as_openrouter_shows_it_or_excludes_it() -> None:
    events = load_sse("stream_thinking.sse")
    shown = ADAPTER.for_call({"reasoning": {"max_tokens": 2000}}).stream_translator(MODEL)
    chunks = [c["choices"][0]["delta"] for e in events for c in shown.feed(e)]
    reasoning = "".join(d.get("reasoning", "") for d in chunks)
    assert reasoning.startswith("I need to find the GCD of 1071 and 462")
    assert reasoning == "".join(d.get("reasoning_content", "") for d in chunks)
    hidden = ADAPTER.for_call({"reasoning": {"exclude": True}}).stream_translator(MODEL)
    chunks = [c["choices"][0]["delta"] for e in events for c in hidden.feed(e)]
    assert not [d for d in chunks if {"reasoning", "reasoning_content", "thinking_blocks"} & set(d)]
    content = "".join(d.get("content") or "" for d in chunks)
    assert content == "The greatest common divisor of 1071 and 462 is **21**."
    # what the provider produced is still counted, should its usage never come
    assert hidden.output_chars == shown.output_chars == len(reasoning) + len(content)


def test_every_chunk_says_usage_null_as_openai_does_before_its_usage_chunk() -> None:
    """OpenAI sends `"usage": null` on each chunk while the usage chunk is still to come; the
    gateway drops it again for a client that did not ask for usage (gateway/dialects.py)."""
    _, per_event = translate("stream_tool_use.sse")
    chunks = [chunk for chunks in per_event for chunk in chunks]
    assert chunks and all("usage" in c and c["usage"] is None for c in chunks)


def test_error_event_raises_after_relaying_what_came_before() -> None:
    translator = ADAPTER.stream_translator(MODEL)
    events = load_sse("stream_overloaded.sse")
    relayed = [translator.feed(event) for event in events[:-1]]
    assert deltas(relayed)[-1] == {"content": "Once upon"}
    with pytest.raises(UpstreamStreamError) as caught:
        translator.feed(events[-1])
    assert caught.value.code == "overloaded_error"
    assert "Overloaded" in caught.value.message
    assert not translator.finished
    assert translator.usage is None
    assert translator.input_tokens_seen == 12


def test_ping_unknown_events_and_a_done_line_are_ignored() -> None:
    translator = ADAPTER.stream_translator(MODEL)
    assert translator.feed(SSEEvent(data='{"type": "ping"}', event="ping")) == []
    assert translator.feed(SSEEvent(data='{"type": "brand_new_event"}', event="x")) == []
    assert translator.feed(SSEEvent(data="[DONE]")) == []
    assert translator.finish() == []  # not finished: no invented finish chunk


@pytest.mark.parametrize("data", ["not json", '{"type": "content_block_delta"', "[1]", "7"])
def test_an_event_that_is_not_a_json_object_is_a_broken_stream(data: str) -> None:
    """Dropped, a malformed event would leave a hole in an answer relayed as complete."""
    translator = ADAPTER.stream_translator(MODEL)
    with pytest.raises(UpstreamStreamError, match="malformed stream event"):
        translator.feed(SSEEvent(data=data, event="content_block_delta"))


def test_missing_stop_reason_still_finishes_once() -> None:
    translator = ADAPTER.stream_translator(MODEL)
    translator.feed(SSEEvent(data='{"type":"message_start","message":{"id":"msg_1"}}'))
    translator.feed(
        SSEEvent(data='{"type":"message_delta","delta":{},"usage":{"output_tokens":3}}')
    )
    translator.feed(SSEEvent(data='{"type":"message_stop"}'))
    [chunk] = translator.finish()
    assert chunk["choices"][0]["finish_reason"] == "stop"
    assert translator.finish() == []


def test_tool_calls_without_arguments_still_stream_a_json_object() -> None:
    # Anthropic streams a tool that takes no input as an empty start `input` and at most an
    # empty partial_json; an OpenAI client must still assemble "{}", as the plain answer gives.
    translator, per_event = translate("stream_tool_no_args.sse")
    calls = assemble_tool_calls(deltas(per_event))
    assert [(c["id"], c["name"], c["arguments"]) for c in calls] == [
        ("toolu_01D7FLrfh4GYq7yT1ULFeyMV", "get_time", "{}"),
        ("toolu_01K3cZr9qP2wVn8XyT5mB6hA", "list_files", "{}"),
    ]
    assert translator.usage is not None
    assert translator.usage.output_tokens == 41


def test_redacted_thinking_is_handed_out_for_the_next_turn() -> None:
    # A client must pass every thinking block of a tool loop back unchanged, redacted ones too.
    _, per_event = translate("stream_redacted_thinking.sse")
    chunks = deltas(per_event)
    handed = [block for d in chunks for block in d.get("thinking_blocks", [])]
    assert handed == [
        {
            "type": "thinking",
            "thinking": "Let me look at this.",
            "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrk",
            "index": 0,
        },
        {
            "index": 1,
            "type": "redacted_thinking",
            "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpPkNRj2YfWXGmKD"
            "xH4mPnZ5sQ7vB8URj2pLmN3kF8/dW5hR7xJ0aP1oLvpZg1U",
        },
    ]
    assert "".join(d.get("reasoning_content", "") for d in chunks) == "Let me look at this."
    assert "".join(d.get("content") or "" for d in chunks) == "Done."


def test_the_openai_sdk_stream_helper_assembles_every_thinking_block() -> None:
    # `client.chat.completions.stream(...)` merges list deltas by their `index`; several
    # thinking blocks in one stream must not break it, and come out whole and in order.
    _, per_event = translate("stream_redacted_thinking.sse")
    state: ChatCompletionStreamState[None] = ChatCompletionStreamState()
    for chunks in per_event:
        for chunk in chunks:
            state.handle_chunk(ChatCompletionChunk.model_validate(chunk))
    message = state.get_final_completion().choices[0].message.model_dump()
    assert message["content"] == "Done."
    assert [
        (b["type"], b.get("signature") or b.get("data")[:8]) for b in message["thinking_blocks"]
    ] == [
        ("thinking", "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrk"),
        ("redacted_thinking", "EmwKAhgB"),
    ]


def test_a_message_delta_repeating_input_counts_as_zero_does_not_erase_them() -> None:
    # Counts are cumulative, so they never shrink; Anthropic-compatible upstreams (and older
    # gateways in front of Anthropic) send input_tokens 0 in message_delta.
    translator = ADAPTER.stream_translator(MODEL)
    start = {
        "type": "message_start",
        "message": {
            "id": "msg_1",
            "usage": {
                "input_tokens": 40,
                "cache_read_input_tokens": 900,
                "cache_creation_input_tokens": 60,
                "output_tokens": 1,
            },
        },
    }
    delta = {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn"},
        "usage": {"input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 12},
    }
    for event in (start, delta, {"type": "message_stop"}):
        translator.feed(SSEEvent(data=json.dumps(event)))
    assert translator.usage is not None
    assert (translator.usage.input_tokens, translator.usage.output_tokens) == (1000, 12)
    assert translator.usage.openai_usage()["prompt_tokens_details"] == {
        "cached_tokens": 900,
        "cache_write_tokens": 60,
    }


def test_interleaved_tool_blocks_keep_their_arguments_apart() -> None:
    def block_delta(index: int, fragment: str) -> dict[str, Any]:
        delta = {"type": "input_json_delta", "partial_json": fragment}
        return {"type": "content_block_delta", "index": index, "delta": delta}

    def tool_start(index: int, name: str) -> dict[str, Any]:
        block = {"type": "tool_use", "id": f"toolu_{name}", "name": name, "input": {}}
        return {"type": "content_block_start", "index": index, "content_block": block}

    events = [
        {"type": "message_start", "message": {"id": "msg_x", "usage": {"input_tokens": 9}}},
        tool_start(1, "a"),
        tool_start(2, "b"),
        block_delta(2, '{"y": '),
        block_delta(1, '{"x": '),
        block_delta(1, "1}"),
        block_delta(2, "2}"),
        {"type": "content_block_stop", "index": 2},
        {"type": "content_block_stop", "index": 1},
    ]
    translator = ADAPTER.stream_translator(MODEL)
    chunks = [c for e in events for c in translator.feed(SSEEvent(data=json.dumps(e)))]
    calls = assemble_tool_calls([c["choices"][0]["delta"] for c in chunks])
    assert [(c["id"], json.loads(c["arguments"])) for c in calls] == [
        ("toolu_a", {"x": 1}),
        ("toolu_b", {"y": 2}),
    ]
