"""Anthropic Messages API answers as its documentation shows them, byte for byte (SSE frames:
`event: TYPE` then `data: JSON`), for the hostile upstream (tests/fakes/hostile_upstream.py).

Each `Wire` is one recorded answer, streamed and whole: web search with `server_tool_use`,
`web_search_tool_result` and `citations_delta` (the input counts growing between message_start
and the cumulative message_delta, `server_tool_use` counts, `service_tier`); extended thinking
with `signature_delta` and a `redacted_thinking` block, and 5-minute and 1-hour cache writes;
a `refusal` mid-answer with its `stop_details`; `pause_turn` in a server tool loop;
`model_context_window_exceeded`; block types and events this code has never heard of between
a text block and a tool call (a future block with its own delta type, a `fallback` block, an
unknown event); `container` and `context_management` in message_delta; an `overloaded_error`
event mid-stream. `usage` is what the answer bills (the final counts).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]
MODEL = "claude-sonnet-4-5-20250929"


def frame(data: JSON) -> bytes:
    """One event as Anthropic frames it (its `event:` line is its type)."""
    return f"event: {data['type']}\ndata: {json.dumps(data)}\n\n".encode()


def _start(usage: JSON, msg_id: str = "msg_01G8kFhKxXj9rH1J7vL2q3A") -> JSON:
    message = {"id": msg_id, "type": "message", "role": "assistant", "model": MODEL,
               "content": [], "stop_reason": None, "stop_sequence": None,
               "usage": usage}  # fmt: skip
    return {"type": "message_start", "message": message}


def _block(index: int, block: JSON, *deltas: JSON) -> list[JSON]:
    events = [{"type": "content_block_start", "index": index, "content_block": block}]
    events += [{"type": "content_block_delta", "index": index, "delta": d} for d in deltas]
    return [*events, {"type": "content_block_stop", "index": index}]


def _text(text: str) -> JSON:
    return {"type": "text_delta", "text": text}


def _json(partial: str) -> JSON:
    return {"type": "input_json_delta", "partial_json": partial}


def _end(stop_reason: str, usage: JSON, **delta: Any) -> list[JSON]:
    message_delta = {"type": "message_delta",
                     "delta": {"stop_reason": stop_reason, "stop_sequence": None, **delta},
                     "usage": usage}  # fmt: skip
    return [message_delta, {"type": "message_stop"}]


@dataclass
class Wire:
    """One answer: its stream events, its whole `message`, and what it bills."""

    events: list[JSON]
    message: JSON
    usage: JSON  # the final usage (cache_creation split included)
    text: str = ""  # the text a client reads, all text blocks joined
    tool_calls: list[JSON] = field(default_factory=list)  # [{id, name, input}] (client tools)
    thinking: str = ""

    def sse(self) -> list[bytes]:
        return [frame(event) for event in self.events]

    def body(self) -> bytes:
        return json.dumps(self.message).encode()


def _wire(events: list[JSON], blocks: list[JSON], stop: str, usage: JSON, **extra: Any) -> Wire:
    message = dict(events[0]["message"], content=blocks, stop_reason=stop, usage=usage)
    message |= extra.pop("message_fields", {})
    return Wire(events, message, usage, **extra)


SEARCH_ID = "srvtoolu_014hJH82Qum7Td6UV8gDXThB"
_RESULT = {
    "type": "web_search_tool_result", "tool_use_id": SEARCH_ID,
    "content": [{"type": "web_search_result", "title": "Weather in New York City in May 2025",
                 "url": "https://world-weather.info/forecast/usa/new_york/may-2025/",
                 "encrypted_content": "Ev0DCioIAxgCIiQ3NmU4ZmI4OC1k", "page_age": None}],
}  # fmt: skip
_CITATION = {"type": "web_search_result_location", "cited_text": "Sunny, high of 72F.",
             "url": "https://world-weather.info/forecast/usa/new_york/may-2025/",
             "title": "Weather in New York City in May 2025",
             "encrypted_index": "Eo8BCioIAhgBIiQyYjQ0OWJmZi1lNm"}  # fmt: skip


def web_search(prompt_tokens: int = 679, input_tokens: int = 1082) -> Wire:
    """The streaming web search of Anthropic's web search tool page: text, server_tool_use,
    its result, cited text; the searches' input is counted in the final message_delta only
    (the page's figures: 2,679 tokens of prompt, 10,682 of input in all)."""
    start_usage = {"input_tokens": prompt_tokens, "cache_creation_input_tokens": 0,
                   "cache_read_input_tokens": 0, "output_tokens": 3,
                   "cache_creation": {"ephemeral_5m_input_tokens": 0,
                                      "ephemeral_1h_input_tokens": 0},
                   "service_tier": "standard"}  # fmt: skip
    usage = {"input_tokens": input_tokens, "cache_creation_input_tokens": 0,
             "cache_read_input_tokens": 0, "output_tokens": 510,
             "server_tool_use": {"web_search_requests": 1}}  # fmt: skip
    search = {"type": "server_tool_use", "id": SEARCH_ID, "name": "web_search", "input": {}}
    events = [_start(start_usage), {"type": "ping"}]
    events += _block(
        0,
        {"type": "text", "text": ""},
        _text("I'll check the current weather in New York City for you"),
        _text("."),
    )
    events += _block(1, search, _json(""), _json('{"query'), _json('": "weather NY'), _json('C"}'))
    events += _block(2, _RESULT)
    events += _block(3, {"type": "text", "text": ""}, _text("Here's the current weather: "))
    events += _block(
        4,
        {"type": "text", "text": "", "citations": []},
        {"type": "citations_delta", "citation": _CITATION},
        _text("sunny, 72F."),
    )
    events += _end("end_turn", usage)
    blocks = [{"type": "text", "text": "I'll check the current weather in New York City for you."},
              dict(search, input={"query": "weather NYC"}), _RESULT,
              {"type": "text", "text": "Here's the current weather: "},
              {"type": "text", "text": "sunny, 72F.", "citations": [_CITATION]}]  # fmt: skip
    text = "".join(b["text"] for b in blocks if b["type"] == "text")
    return _wire(events, blocks, "end_turn", usage | {"service_tier": "standard"}, text=text)


def thinking_cached() -> Wire:
    """Extended thinking (thinking_delta, signature_delta), a redacted_thinking block, then the
    answer; the prompt written to the cache for 5 minutes (1,000 tokens) and an hour (2,000)."""
    split = {"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 2000}
    start_usage = {"input_tokens": 50, "cache_creation_input_tokens": 3000,
                   "cache_read_input_tokens": 1000, "cache_creation": split,
                   "output_tokens": 1, "service_tier": "standard"}  # fmt: skip
    usage = {"input_tokens": 50, "cache_creation_input_tokens": 3000,
             "cache_read_input_tokens": 1000, "output_tokens": 300}  # fmt: skip
    signature = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"
    redacted = "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP"
    events = [_start(start_usage)]
    events += _block(0, {"type": "thinking", "thinking": ""},
                     {"type": "thinking_delta", "thinking": "Let me solve this step by step."},
                     {"type": "thinking_delta", "thinking": " 27 * 453 = 12231."},
                     {"type": "signature_delta", "signature": signature})  # fmt: skip
    events.append({"type": "ping"})
    events += _block(1, {"type": "redacted_thinking", "data": redacted})
    events += _block(2, {"type": "text", "text": ""}, _text("27 * 453 = 12,231"))
    events += _end("end_turn", usage)
    thought = "Let me solve this step by step. 27 * 453 = 12231."
    blocks = [{"type": "thinking", "thinking": thought, "signature": signature},
              {"type": "redacted_thinking", "data": redacted},
              {"type": "text", "text": "27 * 453 = 12,231"}]  # fmt: skip
    return _wire(events, blocks, "end_turn", usage | {"cache_creation": split},
                 text="27 * 453 = 12,231", thinking=thought)  # fmt: skip


REFUSAL_DETAILS = {
    "type": "refusal", "category": "cyber",
    "explanation": "This request was declined because it could enable cyber harm.",
}  # fmt: skip


def refusal() -> Wire:
    """A refusal after some text was streamed: stop_reason refusal with its stop_details."""
    usage = {"input_tokens": 412, "cache_creation_input_tokens": 0,
             "cache_read_input_tokens": 0, "output_tokens": 9}  # fmt: skip
    events = [_start(dict(usage, output_tokens=1))]
    events += _block(0, {"type": "text", "text": ""}, _text("Here is how to"))
    events += _end("refusal", usage, stop_details=REFUSAL_DETAILS)
    blocks = [{"type": "text", "text": "Here is how to"}]
    return _wire(events, blocks, "refusal", usage, text="Here is how to",
                 message_fields={"stop_details": REFUSAL_DETAILS})  # fmt: skip


def pause_turn() -> Wire:
    """A long server tool loop paused (pause_turn): the search began, no result yet."""
    usage = {"input_tokens": 1000, "cache_creation_input_tokens": 0,
             "cache_read_input_tokens": 0, "output_tokens": 80,
             "server_tool_use": {"web_search_requests": 0}}  # fmt: skip
    search = {"type": "server_tool_use", "id": SEARCH_ID, "name": "web_search", "input": {}}
    events = [_start(dict(usage, output_tokens=1))]
    events += _block(0, {"type": "text", "text": ""}, _text("Let me search for that."))
    events += _block(1, search, _json('{"query": "q"}'))
    events += _end("pause_turn", usage)
    blocks = [{"type": "text", "text": "Let me search for that."},
              dict(search, input={"query": "q"})]  # fmt: skip
    return _wire(events, blocks, "pause_turn", usage, text="Let me search for that.")


def search_loop(words_per_turn: int, turns: int = 2, turn_input: int | None = None) -> Wire:
    """A web search loop of `turns` turns of the server's sampling loop, each writing
    `words_per_turn` text deltas (within its own max_tokens), a search between two turns:
    Anthropic's max_tokens limits each call to the model, so the answer's `output_tokens` (all
    turns) is over the request's max_tokens. With `turn_input`, each turn reads that many input
    tokens, and `usage` reports them as Anthropic does: the top-level counts summed over the
    turns, each turn's own in `usage.iterations` (type `message`)."""
    words = [f" w{n}" for n in range(words_per_turn)]
    usage = {"input_tokens": 1500, "cache_creation_input_tokens": 0,
             "cache_read_input_tokens": 0, "output_tokens": turns * (words_per_turn + 1) - 1,
             "server_tool_use": {"web_search_requests": turns - 1}}  # fmt: skip
    if turn_input is not None:
        usage["input_tokens"] = turns * turn_input
        usage["iterations"] = [
            {"type": "message", "input_tokens": turn_input, "cache_creation_input_tokens": 0,
             "cache_read_input_tokens": 0, "output_tokens": words_per_turn + (turn < turns - 1)}
            for turn in range(turns)
        ]  # fmt: skip
    search = {"type": "server_tool_use", "id": SEARCH_ID, "name": "web_search", "input": {}}
    text = "".join(words)
    events, blocks = [_start(dict(usage, input_tokens=40, output_tokens=1))], []
    for turn in range(turns):
        events += _block(len(blocks), {"type": "text", "text": ""}, *[_text(w) for w in words])
        blocks.append({"type": "text", "text": text})
        if turn < turns - 1:
            events += _block(len(blocks), search, _json('{"query": "q"}'))
            events += _block(len(blocks) + 1, _RESULT)
            blocks += [dict(search, input={"query": "q"}), _RESULT]
    events += _end("end_turn", usage)
    return _wire(events, blocks, "end_turn", usage, text=text * turns)


def context_window_exceeded() -> Wire:
    """The answer stopped at the model's context window (model_context_window_exceeded)."""
    usage = {"input_tokens": 990, "cache_creation_input_tokens": 0,
             "cache_read_input_tokens": 0, "output_tokens": 1000}  # fmt: skip
    events = [_start(dict(usage, output_tokens=1))]
    events += _block(0, {"type": "text", "text": ""}, _text("The long answer"))
    events += _end("model_context_window_exceeded", usage)
    blocks = [{"type": "text", "text": "The long answer"}]
    return _wire(events, blocks, "model_context_window_exceeded", usage, text="The long answer")


TOOL = {"id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "name": "get_weather",
        "input": {"location": "San Francisco, CA"}}  # fmt: skip


def _container() -> JSON:
    """A container as Anthropic answers it: a new one for each conversation that names none
    (the box keeps each id for the user it was answered to: gateway/containers.py)."""
    return {"id": f"container_011{uuid.uuid4().hex[:21]}", "expires_at": "2026-12-05T01:00:00Z"}


_EDITS = {"applied_edits": [{"type": "clear_tool_uses_20250919", "cleared_tool_uses": 2,
                             "cleared_input_tokens": 5000}]}  # fmt: skip


def unknown_blocks() -> Wire:
    """Text, a block type of a future API with its own delta type, an unknown event, a
    `fallback` block, then a client tool call (block 3), programmatic-call `caller` and all;
    message_delta carries `container` and `context_management`, and comes twice."""
    usage = {"input_tokens": 472, "cache_creation_input_tokens": 0,
             "cache_read_input_tokens": 0, "output_tokens": 89}  # fmt: skip
    future = {"type": "hologram", "payload": {"shape": "cube"}}
    fallback = {"type": "fallback", "from": {"model": "claude-fable-5"},
                "to": {"model": "claude-opus-4-8"}}  # fmt: skip
    tool = {"type": "tool_use", "id": TOOL["id"], "name": TOOL["name"], "input": {},
            "caller": {"type": "direct"}}  # fmt: skip
    events = [_start(dict(usage, output_tokens=1))]
    events += _block(0, {"type": "text", "text": ""}, _text("Okay, let's check the weather."))
    events += _block(1, future, {"type": "hologram_delta", "frames": 3})
    events.append({"type": "message_annotation", "detail": {"x": 1}})
    events += _block(2, fallback)
    events += _block(3, tool, _json(""), _json('{"location": "San Fra'), _json('ncisco, CA"}'))
    events.append({"type": "message_delta", "delta": {"stop_reason": None, "stop_sequence": None},
                   "usage": dict(usage, output_tokens=40)})  # fmt: skip
    container = _container()
    events += _end("tool_use", usage, container=container)
    events[-2]["context_management"] = _EDITS
    blocks = [{"type": "text", "text": "Okay, let's check the weather."}, future, fallback,
              dict(tool, input=TOOL["input"])]  # fmt: skip
    return _wire(events, blocks, "tool_use", usage, text="Okay, let's check the weather.",
                 tool_calls=[TOOL], message_fields={"container": container,
                                                    "context_management": _EDITS})  # fmt: skip


def overloaded_midway() -> Wire:
    """Text, then an `overloaded_error` event (what a 529 would have been) and nothing more."""
    usage = {"input_tokens": 30, "cache_creation_input_tokens": 0,
             "cache_read_input_tokens": 0, "output_tokens": 1}  # fmt: skip
    events = [_start(usage)]
    events += _block(0, {"type": "text", "text": ""}, _text("Hello"))[:2]
    events.append({"type": "error", "error": {"type": "overloaded_error",
                                              "message": "Overloaded"}})  # fmt: skip
    return Wire(events, {}, usage, text="Hello")


WEATHER = {"id": "toolu_01A09q90qw90lq917835lq9", "name": "get_weather",
           "input": {"location": "Paris"}}  # fmt: skip
TIME = {"id": "toolu_01B09q90qw90lq917835lq8", "name": "get_time",
        "input": {"timezone": "Europe/Paris"}}  # fmt: skip


def interleaved() -> Wire:
    """Interleaved thinking (beta interleaved-thinking-2025-05-14): a thought, a tool call, a
    second thought, a second tool call, each thought signed."""
    usage = {"input_tokens": 600, "cache_creation_input_tokens": 0,
             "cache_read_input_tokens": 0, "output_tokens": 210}  # fmt: skip
    events = [_start(dict(usage, output_tokens=1))]
    blocks: list[JSON] = []
    for index, (thought, tool) in enumerate((("I need the weather.", WEATHER),
                                             ("And the local time.", TIME))):  # fmt: skip
        signature = f"EqQBCgIYAhIM{index}gbcDa9GJwZA2b3hGgxBdjrk"
        events += _block(2 * index, {"type": "thinking", "thinking": ""},
                         {"type": "thinking_delta", "thinking": thought},
                         {"type": "signature_delta", "signature": signature})  # fmt: skip
        start = {"type": "tool_use", "id": tool["id"], "name": tool["name"], "input": {}}
        arguments = json.dumps(tool["input"])
        events += _block(2 * index + 1, start, _json(arguments[:5]), _json(arguments[5:]))
        blocks += [{"type": "thinking", "thinking": thought, "signature": signature},
                   dict(start, input=tool["input"])]  # fmt: skip
    events += _end("tool_use", usage)
    return _wire(events, blocks, "tool_use", usage, tool_calls=[WEATHER, TIME],
                 thinking="I need the weather.And the local time.")  # fmt: skip


def refusal_before_output() -> Wire:
    """A classifier's refusal before any output (the refusals page's answer): no content block
    at all, stop_reason refusal with its stop_details, 412 input tokens and no output."""
    usage = {"input_tokens": 412, "output_tokens": 0}
    events = [_start(dict(usage)), *_end("refusal", usage, stop_details=REFUSAL_DETAILS)]
    return _wire(events, [], "refusal", usage,
                 message_fields={"stop_details": REFUSAL_DETAILS})  # fmt: skip


def served_by_fallback() -> Wire:
    """Server-side fallback (beta server-side-fallback-2026-07-01): the requested model
    declined, the fallback model answered. `usage.iterations` lists the declined hop as a
    `message` entry and the serving hop as `fallback_message` ("in place of `message`"); the
    top-level counts are theirs together (compaction entries alone are left out of them)."""
    declined = {"type": "message", "model": "claude-fable-5", "input_tokens": 412,
                "output_tokens": 0, "cache_read_input_tokens": 0,
                "cache_creation_input_tokens": 0}  # fmt: skip
    served = dict(declined, type="fallback_message", model="claude-opus-4-8", output_tokens=120)
    usage = {"input_tokens": 824, "cache_creation_input_tokens": 0,
             "cache_read_input_tokens": 0, "output_tokens": 120}  # fmt: skip
    fallback = {"type": "fallback", "from": {"model": "claude-fable-5"},
                "to": {"model": "claude-opus-4-8"}}  # fmt: skip
    start_usage = dict(usage, input_tokens=412, output_tokens=1)
    events = [_start(start_usage), *_block(0, fallback)]
    events += _block(1, {"type": "text", "text": ""}, _text("Here is the answer."))
    events += _end("end_turn", dict(usage, iterations=[declined, served]))
    blocks = [fallback, {"type": "text", "text": "Here is the answer."}]
    return _wire(events, blocks, "end_turn", dict(usage, iterations=[declined, served]),
                 text="Here is the answer.")  # fmt: skip
