"""The event builders of a synthesized Responses stream (responses_stream.py): each event a dict
with `type` and the next `sequence_number`, and the item, part and summary events' fields."""

from __future__ import annotations

from typing import Any

from codelace_box.providers.responses_request import ResponsesContext
from codelace_box.providers.responses_response import response_object
from codelace_box.providers.responses_stream_item import StreamItem

JSON = dict[str, Any]
SUMMARY = "summary_text"  # a reasoning item's part_kind when its text goes out as the summary


class EventBuilder:
    """Builds one stream's events, numbering them (the translator's base)."""

    context: ResponsesContext
    model: str
    response_id: str
    created_at: int
    sequence: int
    output: list[JSON]  # finished items

    def _event(self, kind: str, **fields: Any) -> JSON:
        event: JSON = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return event

    def _added(self, item: JSON) -> JSON:
        return self._event("response.output_item.added", output_index=len(self.output), item=item)

    def _item_event(self, kind: str, item: StreamItem, **fields: Any) -> JSON:
        return self._event(kind, item_id=item.item_id, output_index=item.index, **fields)

    def _part_event(self, kind: str, item: StreamItem, part: JSON | None, **fields: Any) -> JSON:
        """An event of a message's or reasoning item's open content part."""
        if part is not None:
            fields["part"] = part
        elif item.kind == "message" and item.part_kind == "output_text":
            fields["logprobs"] = []
        return self._item_event(kind, item, content_index=item.content_index, **fields)

    def _reasoning_event(self, stage: str, item: StreamItem, **fields: Any) -> JSON:
        """`response.reasoning_text.<stage>`, or for a summary (Claude's thinking, asked as one)
        `response.reasoning_summary_text.<stage>` with `summary_index` for `content_index`."""
        if item.part_kind == SUMMARY:
            kind = f"response.reasoning_summary_text.{stage}"
            return self._item_event(kind, item, summary_index=0, **fields)
        return self._part_event(f"response.reasoning_text.{stage}", item, None, **fields)

    def _reasoning_part(self, stage: str, item: StreamItem, status: str = "") -> JSON:
        """`response.content_part.<stage>` of a `reasoning_text` part, or for a summary
        `response.reasoning_summary_part.<stage>` of a `summary_text` part (its `.done` with
        `status: "incomplete"` when the answer stopped in it, as OpenAI marks it)."""
        if item.part_kind == SUMMARY:
            part = {"type": SUMMARY, "text": item.text}
            kind = f"response.reasoning_summary_part.{stage}"
            cut = {"status": status} if status == "incomplete" else {}
            return self._item_event(kind, item, summary_index=0, part=part, **cut)
        part = {"type": "reasoning_text", "text": item.text}
        return self._part_event(f"response.content_part.{stage}", item, part)

    def _response(self, status: str, output: list[JSON], **fields: Any) -> JSON:
        return response_object(
            self.context,
            response_id=self.response_id,
            model=self.model,
            created_at=self.created_at,
            status=status,
            output=output,
            **fields,
        )
