"""A Messages stream from a whole `message`: the events an Anthropic-compatible server (or a
buffering proxy) stands for when it answers a streamed call with one JSON message. The upstream
did the work and bills for it, so the call is relayed and charged as the stream it asked for
(as providers/openai_merge.py does for a whole chat completion). `WHOLE_ANSWERS`: each kind
of provider's reading of a whole answer to a stream request. Pure code."""

from __future__ import annotations

import json
from typing import Any

from codelace_box.jsonwire import NOT_JSON, loads
from codelace_box.providers.base import JSON, SSEEvent
from codelace_box.providers.openai_merge import events_of_answer

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
    for index, block in enumerate(b for b in content if isinstance(b, dict)):
        out += _block_events(index, block)
    delta = {"stop_reason": payload.get("stop_reason"),
             "stop_sequence": payload.get("stop_sequence")}  # fmt: skip
    out.append(_event({"type": "message_delta", "delta": delta, "usage": usage}))
    out.append(_event({"type": "message_stop"}))
    return out


def _block_events(index: int, block: JSON) -> list[SSEEvent]:
    """content_block_start, its deltas and content_block_stop of one block."""
    kind = block.get("type")
    deltas: list[JSON] = []
    if kind == "text" and isinstance(block.get("text"), str):
        citations = block.get("citations")
        opened: JSON = {"type": "text", "text": ""}
        deltas.append({"type": "text_delta", "text": block["text"]})
        if isinstance(citations, list):
            opened["citations"] = []
            deltas += [{"type": "citations_delta", "citation": c} for c in citations]
    elif kind == "thinking" and isinstance(block.get("thinking"), str):
        opened = {"type": "thinking", "thinking": "", "signature": ""}
        deltas.append({"type": "thinking_delta", "thinking": block["thinking"]})
        if isinstance(block.get("signature"), str):
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
    elif kind in _TOOL_CALLS and isinstance(block.get("input"), dict):
        opened = {**block, "input": {}}
        deltas.append({"type": "input_json_delta", "partial_json": json.dumps(block["input"])})
    else:
        opened = block
    events = [_event({"type": "content_block_start", "index": index, "content_block": opened})]
    events += [_event({"type": "content_block_delta", "index": index, "delta": d}) for d in deltas]
    return [*events, _event({"type": "content_block_stop", "index": index})]


def _event(data: dict[str, Any]) -> SSEEvent:
    return SSEEvent(json.dumps(data), event=str(data["type"]))


WHOLE_ANSWERS = {"openai": events_of_answer, "anthropic": events_of_message_answer}
