"""The closing events of the output items a native Responses stream left open where the box cut
it at the reserved output cap (gateway/dialects.py NativeResponsesEvents.cut), sent before its
`response.incomplete` as OpenAI sends them when it stops at `max_output_tokens`: for each open
content part of a message `response.output_text.done` (or `response.refusal.done`) and
`response.content_part.done`, for a function call `response.function_call_arguments.done`, then
`response.output_item.done` with the item as it was left (status incomplete). Clients keep an
item when its `output_item.done` comes (Codex records its history so); without them the cut
answer's text was lost to them. Pure code: no sequence numbers (the caller numbers them)."""

from __future__ import annotations

from collections.abc import Container
from typing import Any

JSON = dict[str, Any]


def closing_events(left: dict[int, JSON], open_parts: Container[tuple[int, int]]) -> list[JSON]:
    """The closing events of the items left open (`left`: output index -> the item as left,
    its streamed text or arguments filled in), in output order; `open_parts` holds the
    (output index, content index) of the content parts not yet done."""
    events: list[JSON] = []
    for index in sorted(left):
        item = left[index]
        at = {"item_id": item.get("id"), "output_index": index}
        if item.get("type") == "message":
            for number, part in enumerate(item.get("content") or []):
                if (index, number) in open_parts and isinstance(part, dict):
                    events += _part_closed(at | {"content_index": number}, part)
        elif item.get("type") == "function_call":
            done = {"type": "response.function_call_arguments.done", **at,
                    "name": item.get("name"), "arguments": item.get("arguments") or ""}  # fmt: skip
            events.append(done)
        events.append({"type": "response.output_item.done", "output_index": index, "item": item})
    return events


def _part_closed(at: JSON, part: JSON) -> list[JSON]:
    """The `.done` events of one content part left open."""
    if part.get("type") == "refusal":
        done = {"type": "response.refusal.done", **at, "refusal": part.get("refusal") or ""}
    else:
        done = {"type": "response.output_text.done", **at, "text": part.get("text") or "",
                "logprobs": []}  # fmt: skip
    return [done, {"type": "response.content_part.done", **at, "part": part}]
