"""Chat Completions stream chunks -> Responses API stream events, in OpenAI's documented order.

It sits after a provider's StreamTranslator (which turns any upstream into chat chunks and keeps
the usage), so one synthesizer serves every provider kind. Each event is a dict with `type` and
a `sequence_number` counting from 0; `sse_frame` writes it as `event: TYPE` + `data: JSON`.

Order (OpenAI's Responses streaming reference; what its SDKs' stream accumulators check):
`response.created`, `response.in_progress`; then one output item at a time:
`response.output_item.added`; for a message `response.content_part.added`,
`response.output_text.delta`..., `.output_text.done`, `.content_part.done`; for reasoning the
same with `response.reasoning_text.*` and a `reasoning_text` part (Claude's thinking, asked as
a summary: `response.reasoning_summary_part.added`, `.reasoning_summary_text.delta`...,
`.done`, `.reasoning_summary_part.done`, a `summary_text` part); for a function call
`response.function_call_arguments.delta`..., `.done`; for a custom tool call
`response.custom_tool_call_input.delta` (the whole input once) and `.done`; then
`response.output_item.done` with the whole item; last `response.completed` (or
`response.incomplete` after a length/content-filter stop) with id, model, output and usage.
Parallel tool calls are one item each, told apart as every route tells them (call_keys.CallKeys:
a new upstream `id` with a name is a new call even at the same chat index), and a call begun
while the open one's arguments are not whole JSON (servers that send every header first) is
held back and follows it whole. A failure after the start is
`response.failed` with `response.error {code, message}` (no `[DONE]`: the stream just ends).
Codex CLI needs `response.output_item.done` for every item (what it records), live
`response.output_text.delta`, and `response.completed` with `response.id` and usage (details
with their counts), else it retries; on `response.failed` it reads `error.code`.
OpenRouter's `reasoning_details` go in the open reasoning item (one is opened for them); while a
tool call or the answer's text streams they wait, for the next reasoning item or one of
their own at the end.

Wiring (the ingress adapter): `start()` once the upstream answered, `feed(chunk)` for each
chunk of the provider's StreamTranslator, `complete(translator.usage, {"cost_usd": ...})` after
settlement, or `fail(message, code)` on an UpstreamStreamError; each event goes out as
`sse_frame(event)`.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from codelace_box.jsonwire import dumps, is_whole_json
from codelace_box.providers.base import UpstreamStreamError, Usage
from codelace_box.providers.call_keys import CallKeys, arguments_of
from codelace_box.providers.chat_text import content_text, reasoning_text
from codelace_box.providers.reasoning_details import details_of, merge
from codelace_box.providers.responses_input import chat_reasoning_id
from codelace_box.providers.responses_request import ResponsesContext
from codelace_box.providers.responses_response import (
    call_item,
    content_part,
    failure_error,
    message_item,
    message_with,
    new_id,
    own_call_id,
    reasoning_item,
    responses_usage,
    status_for,
)
from codelace_box.providers.responses_stream_events import SUMMARY, EventBuilder
from codelace_box.providers.responses_stream_item import StreamItem
from codelace_box.providers.thought_signature import signature_of, signed_id

JSON = dict[str, Any]


def sse_frame(event: JSON) -> bytes:
    """One event as a server-sent event frame."""
    return b"event: " + event["type"].encode() + b"\ndata: " + dumps(event) + b"\n\n"


def _text(data: JSON, key: str) -> str:
    value = data.get(key)
    return value if isinstance(value, str) else ""


class ResponsesStreamTranslator(EventBuilder):
    """Synthesizes one Responses stream from the chat chunks of one answer."""

    def __init__(
        self, context: ResponsesContext, *, model: str, response_id: str | None = None,
        created_at: int | None = None,
    ) -> None:  # fmt: skip
        self.context = context
        self.model = model
        self.response_id = response_id or new_id("resp")
        self.created_at = created_at if created_at is not None else int(time.time())
        self.sequence = 0
        self.output: list[JSON] = []  # finished items
        self.open: StreamItem | None = None
        self.keys = CallKeys()  # which call a tool call piece belongs to
        self.closed_calls: set[Any] = set()  # keys of finished calls
        self.closed_ids: set[str] = set()  # upstream ids of finished calls
        self.issued: set[str] = set()  # the call ids given to this answer's items
        self.deferred: dict[Any, JSON] = {}  # calls begun while another's arguments were open
        self.waiting: list[JSON] = []  # reasoning details that came while a call streamed
        self.finish_reason: str | None = None
        self.refused = False  # a refusal part streamed
        self.ended = False

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> list[JSON]:
        """`response.created` and `response.in_progress`: send them before the first chunk."""
        snapshot = self._response("in_progress", [])
        kinds = ("response.created", "response.in_progress")
        return [self._event(kind, response=snapshot) for kind in kinds]

    def complete(self, usage: Usage | None, usage_extra: JSON | None = None) -> list[JSON]:
        """Closes the open item and ends with `response.completed` (or `.incomplete`, the
        item it stopped in marked incomplete too, as OpenAI marks it)."""
        refused = self.refused and not self.context.compaction  # (status_for)
        status, incomplete = status_for(self.finish_reason, refused)
        events = self._close("incomplete" if incomplete else "completed")
        if self.waiting:  # details that came while a call streamed: an item of their own
            events += self._details([]) + self._close()
        counted = responses_usage(usage, usage_extra) if usage is not None else None
        final = self._response(status, list(self.output), usage=counted,
                               incomplete_details=incomplete)  # fmt: skip
        self.ended = True
        kind = "response.completed" if status == "completed" else "response.incomplete"
        return [*events, self._event(kind, response=final)]

    def fail(self, message: str, code: str = "upstream_error") -> list[JSON]:
        """`response.failed` for an upstream failure after the stream started, with the output
        so far (as OpenAI's): the item it stopped in as it was left, marked incomplete (its
        `.done` events are not sent: their sequence numbers are taken back)."""
        error = failure_error(message, code)
        sequence = self.sequence
        with contextlib.suppress(UpstreamStreamError):  # held-back calls it cannot tell apart
            self._close("incomplete")
        self.sequence, self.ended = sequence, True
        failed = self._response("failed", list(self.output), error=error)
        return [self._event("response.failed", response=failed)]

    # -- chunks -----------------------------------------------------------------------------

    def feed(self, chunk: JSON) -> list[JSON]:
        """Events for one chat.completion.chunk (usage-only chunks give none)."""
        events: list[JSON] = []
        choices = chunk.get("choices")
        for choice in choices if isinstance(choices, list) else ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta")
            if isinstance(delta, dict):
                events += self._delta(delta)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return events

    def _delta(self, delta: JSON) -> list[JSON]:
        calls = delta.get("tool_calls") or ()
        # a call streaming: the delta's pieces of calls go first (its text after the call)
        calls_first = bool(calls) and self.open is not None and self.open.kind == "call"
        events = self._calls(calls) if calls_first else []
        thinking = reasoning_text(delta)
        if thinking:
            events += self._reasoning(thinking)
        for block in delta.get("thinking_blocks") or ():
            if isinstance(block, dict):
                events += self._open_reasoning()
                assert self.open is not None
                self.open.blocks.append({k: v for k, v in block.items() if k != "index"})
        if (pieces := details_of(delta)) and self.context.encrypted_reasoning:  # else: nowhere
            events += self._details(pieces)
        if text := content_text(delta):  # a string, or a list's text chunks (Mistral's)
            events += self._text(text)
        if isinstance(delta.get("refusal"), str) and delta["refusal"]:
            self.refused = True
            events += self._text(delta["refusal"], "refusal")
        if not calls_first:
            events += self._calls(calls)
        return events

    def _calls(self, calls: Any) -> list[JSON]:
        events: list[JSON] = []
        for call in calls if isinstance(calls, list) else ():
            if isinstance(call, dict):
                events += self._call(call)
        return events

    def _details(self, pieces: list[JSON]) -> list[JSON]:
        """Details go in the open reasoning item (one is opened); while a call or a message
        streams they wait (a message cut in two by them would be two answers to Codex)."""
        if (self.open is not None and self.open.kind != "reasoning") or self.deferred:
            self.waiting += pieces
            return []
        events = self._open_reasoning()
        self.open.details += pieces  # type: ignore[union-attr]  # a reasoning item now
        return events

    def _open_reasoning(self) -> list[JSON]:
        if self.open is not None and self.open.kind == "reasoning":
            return []
        events = self._close()
        self.open = StreamItem("reasoning", chat_reasoning_id(self.context.model), len(self.output))
        if self.context.summarized:  # Claude's thinking, as the summary (ResponsesContext)
            self.open.part_kind = SUMMARY
        self.open.details, self.waiting = self.waiting, []
        item = {"id": self.open.item_id, "type": "reasoning", "summary": []}
        return [*events, self._added(item)]

    def _reasoning(self, text: str) -> list[JSON]:
        events = self._open_reasoning()
        item = self.open
        assert item is not None
        if not item.has_part:
            item.has_part = True
            events.append(self._reasoning_part("added", item))
        item.text += text
        events.append(self._reasoning_event("delta", item, delta=text))
        return events

    def _text(self, text: str, kind: str = "output_text") -> list[JSON]:
        """Answer text (`output_text`) or a refusal (a `refusal` part, as OpenAI gives one)."""
        item = self.open
        if item is not None and item.kind == "message" and item.part_kind == kind == "output_text":
            item.text += text  # most chunks: one more delta, built here as _part_event builds
            event = {
                "type": "response.output_text.delta",
                "sequence_number": self.sequence,
                "item_id": item.item_id,
                "output_index": item.index,
                "content_index": item.content_index,
                "delta": text,
                "logprobs": [],
            }  # fmt: skip  (it: same keys, same order)
            self.sequence += 1
            return [event]
        events: list[JSON] = []
        if item is None or item.kind != "message":
            events += self._close()
            item = self.open = StreamItem(
                "message", new_id("msg"), len(self.output), part_kind=kind
            )
            events.append(self._added(message_item(item.item_id, "", "in_progress")))
            events.append(self._part_added(item))
        elif item.part_kind != kind:  # the other kind of part after this one: its own part
            events += self._close_part(item)
            item.content_index, item.part_kind, item.text = item.content_index + 1, kind, ""
            events.append(self._part_added(item))
        item.text += text
        name = "response.refusal.delta" if kind == "refusal" else "response.output_text.delta"
        events.append(self._part_event(name, item, None, delta=text))
        return events

    def _call(self, call: JSON) -> list[JSON]:
        """A tool call's piece, to the call CallKeys tells it is of (a call begun while the
        open one's arguments are not whole JSON is held back, its pieces too)."""
        key = self.keys.key_of(call)
        if self.keys.resent:  # the call sent again whole (call_keys.py): had already
            return []
        given = call.get("function")
        function: JSON = given if isinstance(given, dict) else {}
        fragment = arguments_of(function)
        if key in self.deferred:
            self.deferred[key]["arguments"] += fragment
            return []
        if self._defers(key):
            header = {"id": _text(call, "id"), "name": _text(function, "name")}
            self.deferred[key] = header | {"arguments": fragment,
                                           "extra": call.get("extra_content")}  # fmt: skip
            return []
        return self._piece(key, call, fragment)

    def _piece(self, key: Any, call: JSON, fragment: str) -> list[JSON]:
        """A piece of the call `key` (its item opened by the first)."""
        events: list[JSON] = []
        item = self.open
        if item is None or item.kind != "call" or item.call_key != key:
            events += self._open_call(call, key)
            item = self.open
        assert item is not None
        if fragment:
            item.text += fragment
            if item.name not in self.context.custom_tools:
                events.append(
                    self._item_event("response.function_call_arguments.delta", item, delta=fragment)
                )
        return events

    def _defers(self, key: Any) -> bool:
        """Whether a call beginning now waits until the open one is done: some servers send
        every call's header before any arguments, then the arguments interleaved."""
        item = self.open
        if item is None or item.kind != "call" or item.call_key == key:
            return False
        return key not in self.closed_calls and not is_whole_json(item.text)

    def _flush_deferred(self, status: str) -> list[JSON]:
        """The held-back calls, each a whole item, in the order they began."""
        events: list[JSON] = []
        held, self.deferred = self.deferred, {}
        for key, call in held.items():
            function = {"name": call["name"], "arguments": call["arguments"]}
            piece = {"id": call["id"], "function": function, "extra_content": call["extra"]}
            events += self._piece(key, piece, call["arguments"])
            events += self._close(status)
        return events

    def _open_call(self, call: JSON, key: Any) -> list[JSON]:
        given, given_id = call.get("function"), _text(call, "id")
        name = _text(given, "name") if isinstance(given, dict) else ""
        # a piece of a finished call (a new call that repeats its id names its function)
        if key in self.closed_calls or (given_id in self.closed_ids and not name):
            raise UpstreamStreamError("the upstream interleaved the arguments of tool calls")
        events = self._close()
        custom = name in self.context.custom_tools
        item = StreamItem("call", new_id("ctc" if custom else "fc"), len(self.output))
        # Gemini's thought signature rides in the call_id (providers/thought_signature.py)
        item.call_id = signed_id(own_call_id(given_id, self.issued), signature_of(call))
        item.given_id = given_id
        item.name, item.call_key = name, key
        self.open = item
        return [*events, self._added(self._call_item(item, "in_progress"))]

    # -- closing items ----------------------------------------------------------------------

    def _close(self, status: str = "completed") -> list[JSON]:
        item, self.open = self.open, None
        if item is None:
            return []
        if item.kind == "message":
            events = self._close_part(item)
            done = message_with(item.item_id, item.parts, status)
        elif item.kind == "reasoning":
            done = reasoning_item(
                item.item_id, item.text, item.blocks, self.context, merge(item.details)
            )
            events = []
            if item.has_part:
                events.append(self._reasoning_event("done", item, text=item.text))
                events.append(self._reasoning_part("done", item, status))
        else:
            self.closed_calls.add(item.call_key)
            if item.given_id:
                self.closed_ids.add(item.given_id)
            events = self._no_arguments(item) if status == "completed" else []
            done = self._call_item(item, status)
            events += self._call_done(item, done)
        self.output.append(done)
        events.append(self._event("response.output_item.done", output_index=item.index, item=done))
        return events + self._flush_deferred(status) if self.deferred else events

    def _part_added(self, item: StreamItem) -> JSON:
        part = content_part(item.part_kind, "")
        return self._part_event("response.content_part.added", item, part)

    def _close_part(self, item: StreamItem) -> list[JSON]:
        """The `.done` events of a message's open content part."""
        part = content_part(item.part_kind, item.text)
        item.parts.append(part)
        if item.part_kind == "refusal":
            done = self._part_event("response.refusal.done", item, None, refusal=item.text)
        else:
            done = self._part_event("response.output_text.done", item, None, text=item.text)
        return [done, self._part_event("response.content_part.done", item, part)]

    def _no_arguments(self, item: StreamItem) -> list[JSON]:
        """`{}` for a finished call that streamed no arguments (Ollama's `""` for a tool without
        parameters), as the non-streamed answer gives it: clients parse them as JSON."""
        if item.text or item.name in self.context.custom_tools:
            return []
        item.text = "{}"
        return [self._item_event("response.function_call_arguments.delta", item, delta="{}")]

    def _call_item(self, item: StreamItem, status: str) -> JSON:
        arguments = item.text if status != "in_progress" else ""
        return call_item(item.item_id, item.call_id, item.name, arguments, self.context, status)

    def _call_done(self, item: StreamItem, done: JSON) -> list[JSON]:
        if done["type"] != "custom_tool_call":
            kind, arguments = "response.function_call_arguments.done", done["arguments"]
            return [self._item_event(kind, item, name=done["name"], arguments=arguments)]
        raw = done["input"]
        events = [self._item_event("response.custom_tool_call_input.delta", item, delta=raw)]
        events.append(self._item_event("response.custom_tool_call_input.done", item, input=raw))
        return events
