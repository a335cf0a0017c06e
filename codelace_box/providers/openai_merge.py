"""A chat completion from a stream of chunks, and a stream from a completion: the answer in the
shape the client asked for when an OpenAI-compatible server gave the other one. Some ignore
`"stream": false` and stream anyway (unsloth's server, KAITO's transformers runtime,
mini-sglang, before their fixes); some answer a stream with one JSON completion (SGLang with
tools, buffering proxies). The upstream did the work and bills for it either way. Merged,
each choice's delta strings (content, reasoning, refusal) are joined, its tool calls told apart
as the streamed routes tell them (call_keys.CallKeys) and their argument pieces joined, its last
finish_reason kept; the usage is the last one given (Groq's in `x_groq`). Pure code."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from codelace_box.jsonwire import NOT_JSON, loads
from codelace_box.providers.base import JSON, SSEEvent, is_blank
from codelace_box.providers.call_keys import CallKeys, arguments_of
from codelace_box.providers.openai_usage import chunk_usage
from codelace_box.providers.reasoning_details import merge


def objects_of(
    events: list[SSEEvent], skipped: str | None = None
) -> Iterator[tuple[SSEEvent, JSON | None]]:
    """A whole stream's events read one by one as JSON objects, for the merges of a stream into
    its answer (here, anthropic_whole, responses_whole): blank events passed over (base.py), and
    `skipped` (OpenAI's `[DONE]`); None for an event that is no JSON object (no such stream)."""
    for event in events:
        if is_blank(event) or (skipped is not None and event.data.strip() == skipped):
            continue
        try:
            data = loads(event.data)
        except NOT_JSON:
            data = None
        yield event, data if isinstance(data, dict) else None


def completion_from_stream(events: list[SSEEvent]) -> JSON | None:
    """The `chat.completion` of a stream's events; None when they are no chat chunks. A chunk
    that reports an error is returned as it came (the answer is that failure)."""
    head: JSON | None = None
    choices: dict[int, JSON] = {}
    usage: Any = None
    for event, chunk in objects_of(events, "[DONE]"):
        if chunk is None:
            return None
        if chunk.get("error") or chunk.get("object") == "error":
            return chunk
        if event.event == "error":  # (llama.cpp's `error:` field: its data, the error itself)
            return {"error": chunk}
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
    """Tool call pieces added to the calls so far, each to the call CallKeys tells it is of
    (the calls kept in the order they began, as the streamed chat route numbers them)."""
    calls: dict[Any, JSON] = whole.setdefault("calls", {})
    keys: CallKeys = whole.setdefault("keys", CallKeys())
    for piece in pieces if isinstance(pieces, list) else ():
        if not isinstance(piece, dict):
            continue
        given = piece.get("function")
        function: JSON = given if isinstance(given, dict) else {}
        name = function.get("name")
        key = keys.key_of(piece)
        call = calls.setdefault(key, {"id": None, "type": "function",
                                      "function": {"name": "", "arguments": ""}})  # fmt: skip
        if keys.resent:  # the call sent again whole: had already (but a thought signature)
            if piece.get("extra_content") is not None:
                call["extra_content"] = piece["extra_content"]
            continue
        call["id"] = call["id"] or piece.get("id")
        if isinstance(name, str) and not call["function"]["name"]:
            call["function"]["name"] = name
        call["function"]["arguments"] += arguments_of(function)
        if piece.get("extra_content") is not None:  # Gemini's thought signature
            call["extra_content"] = piece["extra_content"]


def _finished(index: int, whole: JSON) -> JSON:
    """A choice of the answer, from what its chunks added up to."""
    message = whole.get("message") or {"role": "assistant"}
    message.setdefault("content", None)
    if whole.get("calls"):
        message["tool_calls"] = list(whole["calls"].values())
    if isinstance(message.get("reasoning_details"), list):
        message["reasoning_details"] = merge(message["reasoning_details"])
    return {"index": index, "message": message, "finish_reason": whole.get("finish_reason")}


def _error_of(choice: JSON) -> JSON:
    """A choice's own `error` (OpenRouter's, with finish_reason "error"), if it has one."""
    return {"error": choice["error"]} if choice.get("error") else {}


def events_of_completion(completion: JSON) -> list[SSEEvent] | None:
    """The stream events a whole `chat.completion` stands for (a server that answers a streamed
    call with one JSON answer: SGLang with tools, buffering proxies): per choice a chunk with
    its whole message as the delta and one with its finish_reason, then the usage chunk and
    `[DONE]`; None when it is no completion, or one that reports an error (the answer is that
    failure, as unstreamed). A choice's own error rides on its finish_reason's chunk."""
    choices = completion.get("choices")
    if not isinstance(choices, list) or completion.get("error"):
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
        ended = {"index": index, "delta": {}, "finish_reason": finish}
        chunks.append(base | {"choices": [ended | _error_of(choice)]})
    if isinstance(completion.get("usage"), dict):
        chunks.append(base | {"choices": [], "usage": completion["usage"]})
    return [*(SSEEvent(json.dumps(chunk)) for chunk in chunks), SSEEvent("[DONE]")]


def events_of_answer(body: bytes | bytearray) -> list[SSEEvent]:
    """`events_of_completion` of a body that is a whole JSON completion; [] for any other.
    Bytes that are not UTF-8 read as U+FFFD, as in a stream's events; a body nested deeper
    than json reads (RecursionError) is none either."""
    try:
        payload = loads(body)
    except UnicodeDecodeError:
        payload = _replaced(body)
    except NOT_JSON:
        return []
    return (events_of_completion(payload) or []) if isinstance(payload, dict) else []


def _replaced(body: bytes | bytearray) -> Any:
    """`body` parsed with its bytes that are not UTF-8 read as U+FFFD; None if not JSON."""
    try:
        return loads(bytes(body).decode("utf-8", "replace").encode())
    except NOT_JSON:
        return None
