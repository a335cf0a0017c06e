"""A Messages stream from a whole `message`, and a whole `message` from a stream: an
Anthropic-compatible server (or a buffering proxy) that answers a streamed call with one JSON
message, or an unstreamed call with a stream, did the work and bills for it, so the call is
answered and charged in the shape it asked for (as providers/openai_merge.py does for an
OpenAI-compatible server). `WHOLE_ANSWERS` and `STREAMED_ANSWERS`: each kind of provider's
reading of them. Pure code."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from codelace_box.jsonwire import NOT_JSON, loads
from codelace_box.providers.base import JSON, SSEEvent
from codelace_box.providers.openai_merge import (
    completion_from_stream,
    events_of_answer,
    objects_of,
)

# Blocks whose content streams in deltas (the rest come whole in their content_block_start, as
# Anthropic streams redacted thinking and server tools' results)
_TOOL_CALLS = ("tool_use", "server_tool_use", "mcp_tool_use")


def events_of_message_answer(body: bytes | bytearray) -> list[SSEEvent]:
    """The stream events of a body that is a whole Anthropic `message`; [] for any other (an
    error body, no JSON: the stream request's failure, as before)."""
    try:
        payload = loads(bytes(body).decode("utf-8", "replace").encode())
    except NOT_JSON:
        return []
    if not isinstance(payload, dict) or payload.get("type") != "message":
        return []
    content = payload.get("content")
    if not isinstance(content, list):
        return []
    usage = payload.get("usage") if isinstance(payload.get("usage"), dict) else {}
    start = {**payload, "content": [], "stop_reason": None, "stop_sequence": None}
    out = [_event({"type": "message_start", "message": start})]
    for index, block in enumerate(b for b in content if _well_formed(b)):
        out += _block_events(index, block)
    delta = {"stop_reason": payload.get("stop_reason"),
             "stop_sequence": payload.get("stop_sequence")}  # fmt: skip
    out.append(_event({"type": "message_delta", "delta": delta, "usage": usage}))
    out.append(_event({"type": "message_stop"}))
    return out


# What a block of a kind that streams in deltas must hold (a block without it is left out)
_CONTENT = {"text": ("text", str), "thinking": ("thinking", str),
            **{kind: ("input", dict) for kind in _TOOL_CALLS}}  # fmt: skip


def _well_formed(block: Any) -> bool:
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        return False
    field, kind = _CONTENT.get(block["type"], (None, object))
    return field is None or isinstance(block.get(field), kind)


def _block_events(index: int, block: JSON) -> list[SSEEvent]:
    """content_block_start, its deltas and content_block_stop of one block."""
    kind = block.get("type")
    deltas: list[JSON] = []
    if kind == "text":
        citations = block.get("citations")
        opened: JSON = {"type": "text", "text": ""}
        deltas.append({"type": "text_delta", "text": block["text"]})
        if isinstance(citations, list):
            opened["citations"] = []
            deltas += [{"type": "citations_delta", "citation": c} for c in citations]
    elif kind == "thinking":
        opened = {"type": "thinking", "thinking": "", "signature": ""}
        deltas.append({"type": "thinking_delta", "thinking": block["thinking"]})
        if isinstance(block.get("signature"), str):
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
    elif kind in _TOOL_CALLS:
        opened = {**block, "input": {}}
        deltas.append({"type": "input_json_delta", "partial_json": json.dumps(block["input"])})
    else:
        opened = block
    events = [_event({"type": "content_block_start", "index": index, "content_block": opened})]
    events += [_event({"type": "content_block_delta", "index": index, "delta": d}) for d in deltas]
    return [*events, _event({"type": "content_block_stop", "index": index})]


def _event(data: dict[str, Any]) -> SSEEvent:
    return SSEEvent(json.dumps(data), event=str(data["type"]))


def message_from_stream(events: list[SSEEvent]) -> JSON | None:
    """The `message` a Messages stream's events add up to; None when they are no such stream.
    An error event is returned as it came (the answer is that failure)."""
    message: JSON | None = None
    opened: dict[int, JSON] = {}  # the block each index last began (some servers reuse one)
    for _, data in objects_of(events):
        if data is None or data.get("type") == "error":
            return data
        if data.get("type") == "message_start" and isinstance(data.get("message"), dict):
            message = {**data["message"], "content": []}
        elif message is not None:
            _add(message, data, opened)
    if message is not None:
        for block in message["content"]:
            _parse_input(block)
    return message


def _add(message: JSON, data: JSON, opened: dict[int, JSON]) -> None:
    """One event's part of the message being added up."""
    kind, index = data.get("type"), data.get("index")
    if kind == "message_delta":
        delta, usage = data.get("delta"), data.get("usage")
        message.update(delta if isinstance(delta, dict) else {})
        if isinstance(usage, dict):
            counts = message.get("usage")
            counts = counts if isinstance(counts, dict) else {}
            message["usage"] = {**counts, **{k: v for k, v in usage.items() if v is not None}}
    elif not isinstance(index, int):
        return
    elif kind == "content_block_start" and isinstance(data.get("content_block"), dict):
        opened[index] = dict(data["content_block"])
        message["content"].append(opened[index])
    elif kind == "content_block_delta" and index in opened:
        _add_delta(opened[index], data.get("delta"))


_DELTA_FIELDS = {"text_delta": "text", "thinking_delta": "thinking",
                 "input_json_delta": "partial_json"}  # fmt: skip


def _add_delta(block: JSON, delta: Any) -> None:
    if not isinstance(delta, dict):
        return
    kind = delta.get("type")
    field = _DELTA_FIELDS.get(kind) if isinstance(kind, str) else None
    if field is not None and isinstance(delta.get(field), str):
        name = "_partial_json" if field == "partial_json" else field
        block[name] = str(block.get(name) or "") + delta[field]
    elif kind == "signature_delta":
        block["signature"] = delta.get("signature")
    elif kind == "citations_delta":
        block["citations"] = [*(block.get("citations") or []), delta.get("citation")]


def _parse_input(block: JSON) -> None:
    """A tool call's input from its pieces of JSON (left as it began when they are no JSON)."""
    pieces = block.pop("_partial_json", None)
    if pieces is None:
        return
    with contextlib.suppress(*NOT_JSON):
        block["input"] = loads(pieces) if pieces.strip() else block.get("input", {})


WHOLE_ANSWERS = {"openai": events_of_answer, "anthropic": events_of_message_answer}
STREAMED_ANSWERS = {"openai": completion_from_stream, "anthropic": message_from_stream}
