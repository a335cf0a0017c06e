"""A chat completion from a stream of chunks, and a stream from a completion: the answer in the
shape the client asked for when an OpenAI-compatible server gave the other one. Some ignore
`"stream": false` and stream anyway (unsloth's server, KAITO's transformers runtime,
mini-sglang, before their fixes); some answer a stream with one JSON completion (SGLang with
tools, buffering proxies). The upstream did the work and bills for it either way. Merged,
each choice's delta strings (content, reasoning, refusal) are joined, its tool calls gathered by
index (their argument pieces joined), its last finish_reason kept; the usage is the last one
given (Groq's in `x_groq`). Pure code."""

from __future__ import annotations

import json
from typing import Any

from codelace_box.jsonwire import loads
from codelace_box.providers.base import JSON, SSEEvent
from codelace_box.providers.call_keys import arguments_of, same_call
from codelace_box.providers.openai_usage import chunk_usage
from codelace_box.providers.reasoning_details import merge


def completion_from_stream(events: list[SSEEvent]) -> JSON | None:
    """The `chat.completion` of a stream's events; None when they are no chat chunks. A chunk
    that reports an error is returned as it came (the answer is that failure)."""
    head: JSON | None = None
    choices: dict[int, JSON] = {}
    usage: Any = None
    for event in events:
        if event.data.strip() == "[DONE]":
            continue
        try:
            chunk = loads(event.data)
        except ValueError:
            return None
        if not isinstance(chunk, dict):
            return None
        if chunk.get("error") or chunk.get("object") == "error":
            return chunk
        head = head or chunk
        usage = chunk_usage(chunk) or usage
        for choice in chunk.get("choices") or ():
            if isinstance(choice, dict):
                index = choice.get("index")
                _add_choice(choices.setdefault(index if isinstance(index, int) else 0, {}), choice)
    if head is None:
        return None
    answer = {"id": head.get("id"), "object": "chat.completion", "created": head.get("created"),
              "model": head.get("model"),
              "choices": [_finished(i, choices[i]) for i in sorted(choices)]}  # fmt: skip
    if isinstance(usage, dict):
        answer["usage"] = usage
    return answer


def _add_choice(whole: JSON, choice: JSON) -> None:
    """One chunk's choice added to what its choice has so far."""
    message = whole.setdefault("message", {"role": "assistant"})
    delta = choice.get("delta")
    for name, value in (delta if isinstance(delta, dict) else {}).items():
        if name == "tool_calls":
            _add_calls(whole, value)
        elif name == "role":
            message["role"] = value or message["role"]
        elif isinstance(value, str):
            message[name] = str(message.get(name) or "") + value
        elif isinstance(value, list):
            message[name] = [*(message.get(name) or []), *value]
        elif value is not None:
            message[name] = value
    if choice.get("finish_reason"):
        whole["finish_reason"] = choice["finish_reason"]


def _add_calls(whole: JSON, pieces: Any) -> None:
    """Tool call pieces added to the calls so far: each to the call open at its index (a
    piece without one: the last call), but one with a new id and a name begins a call of its
    own unless it is the same_call (servers that number every parallel call 0 or give none)."""
    calls: dict[tuple[int, int], JSON] = whole.setdefault("calls", {})
    for piece in pieces if isinstance(pieces, list) else ():
        if not isinstance(piece, dict):
            continue
        given = piece.get("function")
        function: JSON = given if isinstance(given, dict) else {}
        name = function.get("name")
        key = _key_of(calls, piece, name)
        call = calls.setdefault(key, {"id": None, "type": "function",
                                        "function": {"name": "", "arguments": ""}})  # fmt: skip
        call["id"] = call["id"] or piece.get("id")
        if isinstance(name, str) and not call["function"]["name"]:
            call["function"]["name"] = name
        call["function"]["arguments"] += arguments_of(function)
        if piece.get("extra_content") is not None:  # Gemini's thought signature
            call["extra_content"] = piece["extra_content"]


def _key_of(calls: dict[tuple[int, int], JSON], piece: JSON, name: Any) -> tuple[int, int]:
    """The key of the call a piece belongs to: (its index, the how-many-th call begun there)."""
    index, call_id = piece.get("index"), piece.get("id")
    if not isinstance(index, int):
        known = [key for key, call in calls.items() if call_id and call["id"] == call_id]
        if known:
            return known[0]
        last = max(calls, default=None)
        if last is None or _begins_call(call_id, name, calls[last]):
            return (len(calls), 0)
        return last
    at = max((key for key in calls if key[0] == index), default=None)
    if at is None:
        return (index, 0)
    return (index, at[1] + 1) if _begins_call(call_id, name, calls[at]) else at


def _begins_call(call_id: Any, name: Any, open_call: JSON) -> bool:
    """Whether a piece with this id and name begins a new call after `open_call`."""
    if not call_id or not name or not open_call["id"] or call_id == open_call["id"]:
        return False
    function = open_call["function"]
    return not same_call(name, function["name"], function["arguments"])


def _finished(index: int, whole: JSON) -> JSON:
    """A choice of the answer, from what its chunks added up to."""
    message = whole.get("message") or {"role": "assistant"}
    message.setdefault("content", None)
    if whole.get("calls"):
        message["tool_calls"] = [whole["calls"][i] for i in sorted(whole["calls"])]
    if isinstance(message.get("reasoning_details"), list):
        message["reasoning_details"] = merge(message["reasoning_details"])
    return {"index": index, "message": message, "finish_reason": whole.get("finish_reason")}


def events_of_completion(completion: JSON) -> list[SSEEvent] | None:
    """The stream events a whole `chat.completion` stands for (a server that answers a streamed
    call with one JSON answer: SGLang with tools, buffering proxies): per choice a chunk with
    its whole message as the delta and one with its finish_reason, then the usage chunk and
    `[DONE]`; None when it is no completion."""
    choices = completion.get("choices")
    if not isinstance(choices, list):
        return None
    base = {"id": completion.get("id"), "object": "chat.completion.chunk",
            "created": completion.get("created"), "model": completion.get("model")}  # fmt: skip
    chunks: list[JSON] = []
    for choice in choices:
        if not isinstance(choice, dict):
            continue
        index = choice.get("index", 0)
        message = choice.get("message")
        delta = dict(message) if isinstance(message, dict) else {}
        if isinstance(delta.get("tool_calls"), list):
            delta["tool_calls"] = [{"index": n, **call} if isinstance(call, dict) else call
                                   for n, call in enumerate(delta["tool_calls"])]  # fmt: skip
        finish = choice.get("finish_reason") or "stop"
        chunks.append(base | {"choices": [{"index": index, "delta": delta, "finish_reason": None}]})
        chunks.append(base | {"choices": [{"index": index, "delta": {}, "finish_reason": finish}]})
    if isinstance(completion.get("usage"), dict):
        chunks.append(base | {"choices": [], "usage": completion["usage"]})
    return [*(SSEEvent(json.dumps(chunk)) for chunk in chunks), SSEEvent("[DONE]")]


def events_of_answer(body: bytes | bytearray) -> list[SSEEvent]:
    """`events_of_completion` of a body that is a whole JSON completion; [] for any other."""
    try:
        payload = loads(body)
    except (ValueError, UnicodeDecodeError):
        return []
    return (events_of_completion(payload) or []) if isinstance(payload, dict) else []
