"""A native Responses stream from a whole `response`, and a whole `response` from a stream: a
provider serving the Responses API itself (`--responses-api`: a compatible server, a buffering
proxy) that answers a streamed call with one JSON response, or an unstreamed call with a
stream, did the work and bills for it, so the call is answered and charged in the shape it
asked for (as providers/anthropic_whole.py and openai_merge.py do for the other kinds). Pure
code."""

from __future__ import annotations

import json
from typing import Any

from codelace_box.jsonwire import NOT_JSON, loads
from codelace_box.providers.base import JSON, SSEEvent
from codelace_box.providers.openai_merge import objects_of

# A whole response's status -> the terminal event that carries it (any other status: no answer)
_ENDS = {"completed": "response.completed", "incomplete": "response.incomplete"}
_FINAL = frozenset(_ENDS.values())
# A message part's text field and its events' name: `response.<name>.delta` / `.done`
_PART_TEXT = {"output_text": ("text", "output_text"), "refusal": ("refusal", "refusal")}


def events_of_response(body: bytes | bytearray) -> list[SSEEvent]:
    """The stream events of a body that is a whole completed (or incomplete) `response`;
    [] for any other (an error body, a failed response, no JSON: the stream request's
    failure, as before)."""
    try:
        payload = loads(bytes(body).decode("utf-8", "replace").encode())
    except NOT_JSON:
        return []
    if not isinstance(payload, dict) or payload.get("object") != "response":
        return []
    output, end = payload.get("output"), _ENDS.get(payload.get("status", "completed"))
    if not isinstance(output, list) or end is None:
        return []
    started = {**payload, "status": "in_progress", "output": [], "usage": None}
    events: list[JSON] = [{"type": "response.created", "response": started}]
    for index, item in enumerate(output):
        if isinstance(item, dict):
            events += _item_events(index, item)
    events.append({"type": end, "response": payload})
    return [_event(number, event) for number, event in enumerate(events)]


def _item_events(index: int, item: JSON) -> list[JSON]:
    """output_item.added, the item's content (a message's parts, a call's arguments) as one
    delta each, and output_item.done."""
    at = {"item_id": item.get("id", ""), "output_index": index}
    kind, opened, inner = item.get("type"), {**item, "status": "in_progress"}, []
    if kind == "message" and isinstance(item.get("content"), list):
        opened["content"] = []
        for number, part in enumerate(item["content"]):
            if isinstance(part, dict):
                inner += _part_events({**at, "content_index": number}, part)
    elif kind == "function_call" and isinstance(item.get("arguments"), str):
        opened["arguments"] = ""
        arguments = item["arguments"]
        inner = [{"type": "response.function_call_arguments.delta", **at, "delta": arguments},
                 {"type": "response.function_call_arguments.done", **at,
                  "arguments": arguments}]  # fmt: skip
    added = {"type": "response.output_item.added", "output_index": index, "item": opened}
    return [added, *inner, {"type": "response.output_item.done", "output_index": index,
                            "item": item}]  # fmt: skip


def _part_events(at: JSON, part: JSON) -> list[JSON]:
    """content_part.added, its text as one delta and its `.done`, content_part.done."""
    field, name = _PART_TEXT.get(part.get("type"), (None, ""))  # type: ignore[arg-type]
    text = part.get(field) if field is not None else None
    if field is None or not isinstance(text, str):
        return [{"type": "response.content_part.added", **at, "part": part},
                {"type": "response.content_part.done", **at, "part": part}]  # fmt: skip
    logprobs: JSON = {"logprobs": []} if name == "output_text" else {}
    return [{"type": "response.content_part.added", **at, "part": {**part, field: ""}},
            {"type": f"response.{name}.delta", **at, "delta": text, **logprobs},
            {"type": f"response.{name}.done", **at, field: text, **logprobs},
            {"type": "response.content_part.done", **at, "part": part}]  # fmt: skip


def _event(number: int, data: JSON) -> SSEEvent:
    data["sequence_number"] = number
    return SSEEvent(json.dumps(data), event=str(data["type"]))


def response_from_stream(events: list[SSEEvent]) -> JSON | None:
    """The `response` a native stream ends with (its terminal event's, the items of its
    `output_item.done` events when that leaves `output` empty); a failure as the answer
    (`response.failed`'s response, an `error` event as an error body); None when the events
    are no such stream (no terminal event: cut, or not JSON)."""
    done: dict[int, Any] = {}
    for _, data in objects_of(events):
        if data is None:
            return None
        kind = data.get("type")
        if kind == "error":
            return {"error": data}
        if kind == "response.output_item.done" and isinstance(data.get("output_index"), int):
            done[data["output_index"]] = data.get("item")
        elif (kind in _FINAL or kind == "response.failed") and isinstance(
            response := data.get("response"), dict
        ):
            if not response.get("output") and kind in _FINAL:
                response["output"] = [done[index] for index in sorted(done)]
            return response
    return None
