"""Remote compaction over the Responses API for models that cannot compact themselves (pure code).

Codex (0.171, its "responses_compaction_v2") compacts a long thread with an ordinary streamed
`/v1/responses` call whose input ends with `{"type": "compaction_trigger"}`; the answer's output
is one `{"type": "compaction", "encrypted_content": ...}` item, which Codex keeps in place of the
turns it summarises and hands back in every later request. It does so whenever its provider
counts as OpenAI's (the built-in `openai` provider with `openai_base_url`, a provider named
"OpenAI"); other providers get its local compaction, a plain request the box already serves.

A native upstream (`--responses-api`) gets both items as sent. For a chat or Anthropic model the
trigger becomes a user message asking for a handoff summary (tools offered but not callable),
and the answer's text is sealed in the compaction item (`COMPACTION_PREFIX` + base64: encoded,
not encrypted, for it is the client's own conversation; a forged one is no more than a user
message); handed back, that item becomes a user message with the summary, for any model (a
native one included). A compaction item sealed by someone else (OpenAI's own) can
be read by no other model: a 400 naming it. A translated compaction request the model refuses as
past its context window is asked again with its oldest turns left out (`trimmed_for_compaction`,
gateway/compaction_retry.py): Codex trims only for its local compaction, and stops on that refusal.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Sequence
from typing import Any

from codelace_box.errors import InvalidRequest
from codelace_box.jsonwire import dumps

JSON = dict[str, Any]

TRIGGER = "compaction_trigger"
COMPACTION = "compaction"
COMPACTION_PREFIX = "codelace-compaction-v1:"
SUMMARY_REQUEST = (
    "Compact this conversation now. Write a handoff summary that lets another model continue "
    "the work without the turns above: the user's goals and constraints, what was decided, "
    "what was done so far (files, commands and their results), what is still open, and the "
    "next steps. Answer with the summary alone, in plain text; call no tools."
)
SUMMARY_INTRO = "Summary of the conversation so far (its earlier turns were compacted):\n\n"
TRIMMED_NOTE = (
    "(The oldest turns of this conversation are left out here: with them, this request did not "
    "fit the model's context window.)"
)
_HEAD_ROLES = ("system", "developer")  # instructions: kept when turns are left out
_DROPPED_PREFIXES = (  # the answer's own items: replaced by the compaction item
    "response.output_item.",
    "response.content_part.",
    "response.output_text.",
    "response.refusal.",
    "response.reasoning",
    "response.function_call_arguments.",
    "response.custom_tool_call_input.",
)
_TERMINAL = ("response.completed", "response.incomplete")


def is_trigger(item: Any) -> bool:
    """The item asking for a compaction."""
    return isinstance(item, dict) and item.get("type") == TRIGGER


def asks_compaction(body: Any) -> bool:
    """A Responses body whose input ends with a compaction trigger."""
    items = body.get("input") if isinstance(body, dict) else None
    return isinstance(items, list) and bool(items) and is_trigger(items[-1])


def seal(summary: str) -> str:
    """`encrypted_content` for a summary the box made."""
    return COMPACTION_PREFIX + base64.urlsafe_b64encode(summary.encode()).decode()


def unseal(item: JSON) -> str | None:
    """The summary of a compaction item the box made; None for anyone else's."""
    value = item.get("encrypted_content")
    if not isinstance(value, str) or not value.startswith(COMPACTION_PREFIX):
        return None
    try:
        return base64.urlsafe_b64decode(value[len(COMPACTION_PREFIX) :]).decode()
    except (ValueError, binascii.Error):
        return None


def summary_message(item: JSON, where: str) -> JSON:
    """The chat user message for a compaction item handed back; a 400 for one the box did not
    make (OpenAI's encrypted compaction is readable by OpenAI alone)."""
    summary = unseal(item)
    if summary is None:
        raise InvalidRequest(
            f"{where}: this compaction item was made by another provider and only it can read "
            "it; continue the thread with the model that compacted it, or start a new one",
            param=where,
        )
    return {"role": "user", "content": SUMMARY_INTRO + summary}


def summary_request() -> JSON:
    """The chat user message a trigger becomes."""
    return {"role": "user", "content": SUMMARY_REQUEST}


def for_native(item: Any) -> Any:
    """An input item for a native upstream: the box's own compaction as a user message with
    its summary (no upstream can read the box's seal); anything else as it is."""
    if not _is_compaction(item):
        return item
    summary = unseal(item)
    if summary is None:
        return item
    text = {"type": "input_text", "text": SUMMARY_INTRO + summary}
    return {"type": "message", "role": "user", "content": [text]}


def without_foreign(body: Any) -> Any:
    """A body to check for a native upstream: the compaction items only that upstream can read
    left out (the translated check would refuse them); anything else as it is."""
    items = body.get("input") if isinstance(body, dict) else None
    if not isinstance(items, list):
        return body
    kept = [i for i in items if not (_is_compaction(i) and unseal(i) is None)]
    return body if len(kept) == len(items) else {**body, "input": kept}


def _is_compaction(item: Any) -> bool:
    return isinstance(item, dict) and item.get("type") == COMPACTION


def trimmed_for_compaction(body: JSON) -> JSON | None:
    """A translated compaction request (a chat body) with about the older half of its turns, by
    size, left out: the instructions at its head and the summary request at its end kept, tool
    results whose call went left out too, a user note in their place (so that it still opens
    with a user turn); None when no turn is left to leave out."""
    messages = body.get("messages")
    if not isinstance(messages, list) or len(messages) < 2:
        return None
    head = 0
    while head < len(messages) - 1 and _role(messages[head]) in _HEAD_ROLES:
        head += 1
    turns = messages[head:-1]
    if turns and turns[0] == _note():  # an earlier attempt's
        turns = turns[1:]
    if not turns:
        return None
    sizes = [len(dumps(turn)) for turn in turns]
    goal, dropped, cut = sum(sizes) // 2, 0, 0
    while cut < len(turns) and (dropped < goal or cut == 0 or _role(turns[cut]) == "tool"):
        dropped, cut = dropped + sizes[cut], cut + 1
    return {**body, "messages": [*messages[:head], _note(), *turns[cut:], messages[-1]]}


def _role(message: Any) -> Any:
    return message.get("role") if isinstance(message, dict) else None


def _note() -> JSON:
    return {"role": "user", "content": TRIMMED_NOTE}


def compaction_item(summary: str) -> JSON:
    """The answer's one output item."""
    return {"id": f"cmp_{secrets.token_hex(24)}", "type": COMPACTION,
            "encrypted_content": seal(summary)}  # fmt: skip


def _answer_text(output: Any) -> str:
    texts: list[str] = []
    for item in output if isinstance(output, list) else ():
        if isinstance(item, dict) and item.get("type") == "message":
            parts = item.get("content")
            for part in parts if isinstance(parts, list) else ():
                if isinstance(part, dict) and part.get("type") == "output_text":
                    texts.append(str(part.get("text") or ""))
    return "".join(texts)


def kept_messages(items: list[Any]) -> list[JSON]:
    """The user messages of a compaction's input, as `/v1/responses/compact` repeats them."""
    kept = []
    for item in items:
        if not isinstance(item, dict) or item.get("role") != "user":
            continue
        if item.get("type", "message") != "message":
            continue
        content = item.get("content")
        if isinstance(content, str):
            content = [{"type": "input_text", "text": content}]
        kept.append({"id": item.get("id") or f"msg_{secrets.token_hex(24)}", "type": "message",
                     "status": "completed", "role": "user", "content": content})  # fmt: skip
    return kept


def compaction_answer(response: JSON, kept: Sequence[JSON]) -> JSON:
    """`/v1/responses/compact`'s answer from the response to its trigger: the user messages,
    then the compaction item (the upstream's own, or one sealing the text it answered)."""
    output = response.get("output")
    made = [i for i in output or () if isinstance(i, dict) and i.get("type") == COMPACTION]
    item = made[-1] if made else compacted_response(response)["output"][0]
    return {"id": response.get("id"), "object": "response.compaction",
            "created_at": response.get("created_at"), "output": [*kept, item],
            "usage": response.get("usage")}  # fmt: skip


def compacted_response(response: JSON) -> JSON:
    """A translated (non-streamed) answer to a trigger: its output the compaction item."""
    response["output"] = [compaction_item(_answer_text(response.get("output")))]
    return response


class CompactionEvents:
    """Rewrites a synthesized Responses stream answering a trigger: the summary's own events are
    held back, and the compaction item is added and done just before the terminal event, whose
    response carries it as the whole output; sequence numbers stay gapless."""

    def __init__(self) -> None:
        self.sequence = 0

    def rewrite(self, events: list[JSON]) -> list[JSON]:
        """The events to send in place of `events`."""
        out: list[JSON] = []
        for event in events:
            kind = str(event.get("type", ""))
            if kind.startswith(_DROPPED_PREFIXES):
                continue
            if kind in _TERMINAL:
                out += self._compaction(event["response"])
            out.append(self._numbered(event))
        return out

    def _compaction(self, response: JSON) -> list[JSON]:
        compacted_response(response)
        item = response["output"][0]
        kinds = ("response.output_item.added", "response.output_item.done")
        return [self._numbered({"type": kind, "output_index": 0, "item": item}) for kind in kinds]

    def _numbered(self, event: JSON) -> JSON:
        event["sequence_number"] = self.sequence
        self.sequence += 1
        return event
