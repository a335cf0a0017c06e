"""The output item a Responses stream is in the middle of (responses_stream.py's state): a
message, a reasoning item or a function call, with what it streamed so far."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]


@dataclass
class StreamItem:
    """The output item being streamed."""

    kind: str  # "message", "reasoning" or "call"
    item_id: str
    index: int  # output_index
    text: str = ""  # message text, reasoning text or call arguments
    has_part: bool = False
    part_kind: str = "output_text"  # the open content part of a message: or "refusal"
    content_index: int = 0  # the open content part's index
    parts: list[JSON] = field(default_factory=list)  # a message's finished content parts
    blocks: list[JSON] = field(default_factory=list)  # signed thinking blocks (reasoning)
    details: list[JSON] = field(default_factory=list)  # reasoning details' pieces (reasoning)
    call_id: str = ""
    name: str = ""
    call_key: Any = None  # the call's key (call_keys.CallKeys: which pieces are its)
    given_id: str = ""  # the call's id as the upstream gave it ("" when it gave none)
