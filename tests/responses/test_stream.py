"""Chat stream chunks -> Responses stream events: order, shapes, sequence numbers, usage."""

from __future__ import annotations

import json
from typing import Any

import pytest

from codelace_box.providers.base import UpstreamStreamError, Usage
from codelace_box.providers.responses_request import translate_request
from codelace_box.providers.responses_stream import ResponsesStreamTranslator
from tests.responses.wire import MODEL, chat_chunks, load_json, replay, synthesize

PLAIN = translate_request({"model": MODEL, "input": "Hi", "stream": True}).context


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def test_text_stream_full_event_sequence() -> None:
    chunks, upstream = chat_chunks("openai", "chat_stream_text.sse")
    events = synthesize(PLAIN, chunks, upstream.usage)
    assert types(events) == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    deltas = [e["delta"] for e in events if e["type"] == "response.output_text.delta"]
    assert deltas == ["Hello", "! How can I", " help you today?"]
    item_id = events[2]["item"]["id"]
    assert item_id.startswith("msg_")
    assert {e["item_id"] for e in events[3:9]} == {item_id}
    assert {e["output_index"] for e in events[2:10]} == {0}
    assert events[7]["text"] == "Hello! How can I help you today?"
    created, completed = events[0]["response"], events[-1]["response"]
    assert created["status"] == "in_progress" and created["output"] == []
    assert created["id"] == completed["id"] and completed["id"].startswith("resp_")
    assert completed["model"] == MODEL and completed["status"] == "completed"
    assert completed["output"] == [events[9]["item"]]
    assert completed["usage"] == {
        "input_tokens": 19,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": 10,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 29,
        "cost_usd": "0.000123",
    }
    final = replay(events)
    assert final.output_text == "Hello! How can I help you today?"
    assert final.usage is not None and final.usage.total_tokens == 29


def test_two_parallel_tool_calls() -> None:
    body = load_json("codex_request.json") | {"tools": [_weather_tool()]}
    context = translate_request(body).context
    chunks, upstream = chat_chunks("openai", "chat_stream_parallel_tools.sse")
    events = synthesize(context, chunks, upstream.usage)
    assert types(events) == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    first, second = events[6]["item"], events[11]["item"]
    assert first == {
        "id": events[2]["item"]["id"],
        "type": "function_call",
        "status": "completed",
        "call_id": "call_Wq3sUgbMoTdJ6dJm8jEnxXQd",
        "name": "get_weather",
        "arguments": '{"location": "Paris, France"}',
    }
    assert second["call_id"] == "call_kQx7bW1t0rHhUe4nLsB9aFzG"
    assert json.loads(second["arguments"]) == {"location": "Bogotá, Colombia"}
    assert [events[2]["output_index"], events[7]["output_index"]] == [0, 1]
    assert events[2]["item"]["arguments"] == "" and events[2]["item"]["status"] == "in_progress"
    assert events[10]["arguments"] == second["arguments"]
    completed = events[-1]["response"]
    assert completed["output"] == [first, second]
    assert completed["usage"]["input_tokens_details"]["cached_tokens"] == 64
    final = replay(events)
    assert [c.call_id for c in final.output if c.type == "function_call"] == [
        "call_Wq3sUgbMoTdJ6dJm8jEnxXQd",
        "call_kQx7bW1t0rHhUe4nLsB9aFzG",
    ]


def test_reasoning_text_then_custom_tool_call() -> None:
    context = translate_request(load_json("codex_request.json")).context
    chunks, upstream = chat_chunks("openai", "chat_stream_reasoning_custom_tool.sse")
    events = synthesize(context, chunks, upstream.usage)
    assert types(events) == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.reasoning_text.delta",
        "response.reasoning_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.custom_tool_call_input.delta",
        "response.custom_tool_call_input.done",
        "response.output_item.done",
        "response.completed",
    ]
    reasoning, message, patch = (e["item"] for e in events if e["type"].endswith("item.done"))
    assert reasoning["type"] == "reasoning" and reasoning["summary"] == []
    assert reasoning["content"] == [
        {"type": "reasoning_text", "text": "The user wants a greeting file."}
    ]
    assert "encrypted_content" not in reasoning  # nothing signed to hand back
    assert message["content"][0]["text"] == "Creating hello.txt."
    assert patch == {
        "id": patch["id"],
        "type": "custom_tool_call",
        "status": "completed",
        "call_id": "call_00_apply1",
        "name": "apply_patch",
        "input": "*** Begin Patch\n*** Add File: hello.txt\n+hello\n*** End Patch",
    }
    assert patch["id"].startswith("ctc_")
    usage = events[-1]["response"]["usage"]
    assert usage["output_tokens_details"] == {"reasoning_tokens": 61}
    assert usage["input_tokens_details"]["cached_tokens"] == 1920
    replay(events)


def test_length_stop_ends_incomplete() -> None:
    stream = ResponsesStreamTranslator(PLAIN, model=MODEL)
    events = stream.start()
    events += stream.feed(_chunk({"content": "Once upon"}))
    events += stream.feed(_chunk({}, "length"))
    events += stream.complete(Usage(5, 2))
    last = events[-1]
    assert last["type"] == "response.incomplete"
    assert last["response"]["status"] == "incomplete"
    assert last["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert replay(events).status == "incomplete"


def test_failure_after_start() -> None:
    stream = ResponsesStreamTranslator(PLAIN, model=MODEL)
    events = stream.start() + stream.feed(_chunk({"content": "Hi"}))
    events += stream.fail("the upstream failed: overloaded", "upstream_error")
    last = events[-1]
    assert last["type"] == "response.failed"
    assert last["sequence_number"] == len(events) - 1
    assert last["response"]["id"] == events[0]["response"]["id"]
    assert last["response"]["status"] == "failed"
    assert last["response"]["error"] == {
        "code": "server_error",
        "message": "the upstream failed: overloaded",
    }
    assert replay(events).status == "failed"
    limited = ResponsesStreamTranslator(PLAIN, model=MODEL)
    events = limited.start() + limited.fail("Rate limited; try again in 20s", "rate_limited")
    assert events[-1]["response"]["error"]["code"] == "rate_limit_exceeded"
    too_long = ResponsesStreamTranslator(PLAIN, model=MODEL)
    events = too_long.start() + too_long.fail("prompt too long", "context_length_exceeded")
    assert events[-1]["response"]["error"]["code"] == "context_length_exceeded"  # Codex stops
    refused = ResponsesStreamTranslator(PLAIN, model=MODEL)
    events = refused.start() + refused.fail("flagged as unsafe", "invalid_prompt")
    assert events[-1]["response"]["error"]["code"] == "invalid_prompt"


def test_a_call_begun_while_another_is_open_follows_it_whole() -> None:
    stream = ResponsesStreamTranslator(PLAIN, model=MODEL)
    events = stream.start()
    call = {"index": 0, "id": "call_a", "function": {"name": "f", "arguments": "{"}}
    events += stream.feed(_chunk({"tool_calls": [call]}))
    events += stream.feed(
        _chunk({"tool_calls": [{"index": 1, "id": "call_b", "function": {"name": "g"}}]})
    )
    events += stream.feed(_chunk({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}))
    events += stream.feed(_chunk({"tool_calls": [{"index": 0, "function": {"arguments": "}"}}]}))
    events += stream.complete(None)
    final = replay(events)
    assert [(c.call_id, c.name, c.arguments) for c in final.output] == [  # type: ignore[union-attr]
        ("call_a", "f", "{}"), ("call_b", "g", "{}")]  # fmt: skip


def test_arguments_for_a_finished_call_are_an_upstream_error() -> None:
    stream = ResponsesStreamTranslator(PLAIN, model=MODEL)
    stream.start()
    call = {"index": 0, "id": "call_a", "function": {"name": "f", "arguments": "{}"}}
    stream.feed(_chunk({"tool_calls": [call]}))
    stream.feed(_chunk({"tool_calls": [{"index": 1, "id": "call_b", "function": {"name": "g"}}]}))
    with pytest.raises(UpstreamStreamError):
        stream.feed(_chunk({"tool_calls": [{"index": 0, "function": {"arguments": "}"}}]}))


def test_a_failure_still_ends_the_stream_when_held_back_calls_clash() -> None:
    """A held-back piece reusing the open call's id without naming a function cannot be told
    apart from it: the failed response leaves it out rather than the failure raising (the
    client would get no end at all). One that names its function is a call of its own, given
    an id of its own (parallel calls of one id: test_parallel_calls.py)."""
    for header, kept in (({}, 1), ({"name": "g"}, 2)):
        stream = ResponsesStreamTranslator(PLAIN, model=MODEL)
        stream.start()
        call = {"index": 0, "id": "call_a", "function": {"name": "f", "arguments": "{"}}
        stream.feed(_chunk({"tool_calls": [call]}))
        stream.feed(_chunk({"tool_calls": [{"index": 1, "id": "call_a", "function": header}]}))
        (failed,) = stream.fail("the upstream went away")
        assert failed["type"] == "response.failed"
        ids = [item["call_id"] for item in failed["response"]["output"]]
        assert ids[0] == "call_a" and len(set(ids)) == len(ids) == kept


def test_no_usage_leaves_usage_out() -> None:
    stream = ResponsesStreamTranslator(PLAIN, model=MODEL)
    events = stream.start() + stream.feed(_chunk({"content": "x"}, "stop")) + stream.complete(None)
    assert events[-1]["response"]["usage"] is None
    assert replay(events).output_text == "x"


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def _weather_tool() -> dict[str, Any]:
    return {
        "type": "function",
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
    }


def test_a_call_without_arguments_has_an_empty_object_as_answers_give_it() -> None:
    """A tool without parameters: some servers (Ollama, vLLM's hermes parser) stream its call
    with `arguments: ""` and nothing more. The item's arguments are `{}`, as the non-streamed
    answer gives them, and the deltas add up to them: Codex and the SDKs parse them as JSON."""
    tool = {"type": "function", "name": "current_time", "parameters": {"type": "object"}}
    context = translate_request({"model": MODEL, "input": "time?", "tools": [tool]}).context
    chunks, upstream = chat_chunks("openai", "chat_stream_no_arguments.sse")
    events = synthesize(context, chunks, upstream.usage)
    deltas = [e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta"]
    done = next(e for e in events if e["type"] == "response.function_call_arguments.done")
    assert "".join(deltas) == done["arguments"] == "{}"
    final = replay(events)
    assert [(c.name, c.arguments) for c in final.output] == [("current_time", "{}")]


def test_a_call_piece_whose_function_is_no_object_is_a_call_without_a_name() -> None:
    """A hostile or broken upstream's `function` of another type: no crash mid-stream."""
    stream = ResponsesStreamTranslator(PLAIN, model=MODEL)
    events = stream.start()
    events += stream.feed(_chunk({"tool_calls": [{"index": 0, "id": "call_a", "function": "f"}]}))
    events += stream.complete(None)
    assert [(i["call_id"], i["name"]) for i in events[-1]["response"]["output"]] == [("call_a", "")]
