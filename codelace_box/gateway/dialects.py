"""How a stream is written back in the dialect of the route the call came by.

The relay is one for every route; what differs is the wire format of what it writes. An
encoder turns the translator's items into bytes, writes the tail once the call is settled, and
writes the error event of a stream that failed after it started:
- `/v1/chat/completions`: `data: {chunk}` lines, the usage chunk (with `cost_usd`) when the
  client asked for it, and `data: [DONE]`;
- `/v1/messages`: Anthropic's `event: <type>` / `data: {json}` events; `message_stop` is held
  back until the call is settled, so a client that saw the end of the stream sees it charged;
- `/v1/responses`: the chat chunks synthesized into Responses events (providers/
  responses_stream.py), `response.completed` (with `usage.cost_usd`) after settlement.
`answer_body` does the same for a non-streamed answer once it is settled.
"""

from __future__ import annotations

from typing import Any

from codelace_box.gateway.outcome import cost_field, usage_body
from codelace_box.gateway.request import ChatCall
from codelace_box.gateway.streaming import DONE, encode_chunk, encode_error, encode_json
from codelace_box.providers.base import JSON, Usage
from codelace_box.providers.messages_openai_stream import HIDDEN, anthropic_usage
from codelace_box.providers.responses_closing import closing_events
from codelace_box.providers.responses_compaction import (
    CompactionEvents,
    compacted_response,
    compaction_answer,
)
from codelace_box.providers.responses_native import TERMINAL
from codelace_box.providers.responses_request import ResponsesContext
from codelace_box.providers.responses_response import (
    failure_error,
    responses_usage,
    translate_completion,
)
from codelace_box.providers.responses_stream import ResponsesStreamTranslator, sse_frame

CHAT_ROUTE = "/v1/chat/completions"
MESSAGES_ROUTE = "/v1/messages"
RESPONSES_ROUTE = "/v1/responses"
COMPACT_ROUTE = "/v1/responses/compact"  # gateway/compact.py's ingress: never streamed
EMBEDDINGS_ROUTE = "/v1/embeddings"
_TEMPLATE_KEYS = ("id", "created", "service_tier", "system_fingerprint")

# Anthropic's error types by HTTP status (the statuses of this contract).
ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    408: "timeout_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def anthropic_error_type(status: int) -> str:
    """Anthropic's error type for an HTTP status (5xx: api_error unless overloaded)."""
    known = ANTHROPIC_ERROR_TYPES.get(status)
    if known is not None:
        return known
    return "api_error" if status >= 500 else "invalid_request_error"


# The code of a request Anthropic cannot hold as a message thread: its SDKs' thread helpers
# (the tool runner's included) then send the turn again whole, without `thread`, when the
# error's `details` say so.
THREAD_UNSUPPORTED = "thread_unsupported_request"


def anthropic_error_body(
    status: int, message: str, code: str | None = None, param: str | None = None
) -> JSON:
    """Anthropic's error shape (with the `details` a thread refusal carries)."""
    error: JSON = {"type": anthropic_error_type(status), "message": message}
    if code == THREAD_UNSUPPORTED:
        error["details"] = {"error_code": code, "unsupported": [param or "thread"]}
    return {"type": "error", "error": error}


def encode_event(event: JSON) -> bytes:
    """One Anthropic SSE event: `event: <type>` then its JSON; nothing for one marked HIDDEN."""
    name = event.get("type")
    head = f"event: {name}\n".encode() if isinstance(name, str) and name else b""
    return b"" if event.get(HIDDEN) else head + b"data: " + encode_json(event) + b"\n\n"


class OpenAIChunks:
    """Chat completions chunks, with the usage chunk and `[DONE]` after settlement."""

    def __init__(self, call: ChatCall) -> None:
        self.call = call
        self._template: dict[str, Any] = {}

    def chunk(self, chunk: JSON) -> bytes:
        """Keep the first chunk's ids for the usage chunk; drop the `"usage": null` that asking
        the upstream for usage adds (and translated chunks carry), when the client did not ask
        (OpenAI sends no key then); when it did, OpenAI's chunks before the usage one carry it."""
        if not self.call.include_usage and "usage" in chunk and chunk["usage"] is None:
            del chunk["usage"]
        if not self._template.get("id") and chunk.get("id"):  # Azure's first chunk has id ""
            self._template = {k: chunk[k] for k in _TEMPLATE_KEYS if k in chunk}
        return encode_chunk(chunk)

    def tail(self, usage: Usage, charged: int) -> list[bytes]:
        """The usage chunk if the client asked for it, then `[DONE]`."""
        if not self.call.include_usage:
            return [DONE]
        chunk = self._base() | {"choices": []}
        chunk["usage"] = usage_body(usage, charged)
        return [encode_chunk(chunk), DONE]

    def cut(self, usage: Usage, charged: int) -> list[bytes]:
        """The end of a stream cut at the output cap: every choice finished for "length"."""
        choices: list[JSON] = [
            {"index": i, "delta": {}, "logprobs": None, "finish_reason": "length"}
            for i in range(self.call.choices)
        ]
        chunk = self._base() | {"choices": choices}
        if self.call.include_usage:  # every chunk before the usage one says `"usage": null`
            chunk["usage"] = None
        return [encode_chunk(chunk), *self.tail(usage, charged)]

    def _base(self) -> dict[str, Any]:
        chunk: dict[str, Any] = {"id": self.call.request_id, "created": 0}
        chunk |= self._template
        return chunk | {"object": "chat.completion.chunk", "model": self.call.route.id}

    def error(self, status: int, message: str, error_type: str, code: str) -> bytes:
        """The error chunk the OpenAI SDK raises."""
        return encode_error(message, error_type, code)


class AnthropicEvents:
    """Anthropic stream events; `message_delta` and `message_stop` are written after
    settlement, the former with the counts charged when the box counted them itself (the
    upstream reported none: the client must not read an input of 0)."""

    def __init__(self, call: ChatCall) -> None:
        self.call = call
        self._stop: JSON = {"type": "message_stop"}
        self._delta: JSON | None = None  # the message_delta, held back for the tail
        self._after: list[bytes] = []  # events that came after it (pings...): held behind it
        self._open: set[Any] = set()  # indexes of content blocks started and not stopped

    def chunk(self, event: JSON) -> bytes:
        """The event as Anthropic frames it (message_delta, message_stop, and what came
        between them: held back for the tail, in their order)."""
        kind = event.get("type")
        if kind == "message_stop":
            self._stop = event
            return b""
        if kind == "message_delta":  # the one before, if any, goes out now, in its place
            held, self._delta = self._delta, event
            after, self._after = self._after, []
            return b"" if held is None else b"".join([encode_event(held), *after])
        if self._delta is not None:
            self._after.append(encode_event(event))
            return b""
        if kind == "content_block_start":
            self._open.add(event.get("index"))
        elif kind == "content_block_stop":
            self._open.discard(event.get("index"))
        return encode_event(event)

    def cut(self, usage: Usage, charged: int) -> list[bytes]:
        """The end of a stream cut at the output cap: the open blocks stopped, then
        message_delta with stop_reason max_tokens and message_stop."""
        out = [encode_event({"type": "content_block_stop", "index": i}) for i in self._open]
        delta = {"stop_reason": "max_tokens", "stop_sequence": None}
        self._delta = {"type": "message_delta", "delta": delta,
                       "usage": {"output_tokens": usage.output_tokens}}  # fmt: skip
        return [*out, *self.tail(usage, charged)]

    def tail(self, usage: Usage, charged: int) -> list[bytes]:
        """The held-back message_delta (with the counts charged, when the box counted them)
        and message_stop."""
        out = [] if self._delta is None else [encode_event(_charged_counts(self._delta, usage))]
        return [*out, *self._after, encode_event(self._stop)]

    def error(self, status: int, message: str, error_type: str, code: str) -> bytes:
        """Anthropic's `error` event."""
        return encode_event(anthropic_error_body(status, message))


def _charged_counts(delta: JSON, usage: Usage) -> JSON:
    """A message_delta (or message) showing the counts charged when they are the box's own
    estimate (the upstream's own, when it reported them, are shown as it did)."""
    if not usage.estimated:
        return delta
    shown = delta.get("usage")
    return delta | {"usage": (shown if isinstance(shown, dict) else {}) | anthropic_usage(usage)}


class ResponsesEvents:
    """Responses stream events synthesized from chat chunks; `response.created` goes out with
    the first chunk, `response.completed` after settlement."""

    def __init__(self, call: ChatCall) -> None:
        self.call = call
        self.synth = ResponsesStreamTranslator(call.context, model=call.route.id)
        self._started = False
        compacts = isinstance(call.context, ResponsesContext) and call.context.compaction
        self.compaction = CompactionEvents() if compacts else None

    def _begin(self) -> list[JSON]:
        """`response.created` and `.in_progress` before the first events (numbered before
        them: a first chunk's own events are made after these)."""
        if self._started:
            return []
        self._started = True
        return self.synth.start()

    def _frames(self, events: list[JSON]) -> bytes:
        if self.compaction is not None:  # answering a compaction trigger: one compaction item
            events = self.compaction.rewrite(events)
        return b"".join(sse_frame(event) for event in events)

    def chunk(self, chunk: JSON) -> bytes:
        """The events of one chat chunk (none for a usage-only chunk)."""
        head = self._begin()
        return self._frames([*head, *self.synth.feed(chunk)])

    def tail(self, usage: Usage, charged: int) -> list[bytes]:
        """The open item closed, then `response.completed` with the usage and its cost."""
        head = self._begin()
        return [self._frames([*head, *self.synth.complete(usage, cost_field(charged))])]

    def cut(self, usage: Usage, charged: int) -> list[bytes]:
        """Cut at the output cap: `response.incomplete` for max_output_tokens."""
        self.synth.finish_reason = "length"
        return self.tail(usage, charged)

    def error(self, status: int, message: str, error_type: str, code: str) -> bytes:
        """`response.failed` (Codex retries it, or waits on a rate limit)."""
        head = self._begin()
        return self._frames([*head, *self.synth.fail(message, code)])


_ARGUMENTS_DELTA = "response.function_call_arguments.delta"
_PIECE_KINDS = frozenset({"response.output_text.delta", "response.refusal.delta", _ARGUMENTS_DELTA})


class NativeResponsesEvents:
    """A native upstream's Responses events as they come; its terminal event (given last by
    the translator) is held back and sent after settlement with `cost_usd` in its usage."""

    def __init__(self, call: ChatCall) -> None:
        self.call = call
        self._terminal: JSON | None = None
        self._last_sequence = -1
        self._response: JSON = {}  # the last lifecycle event's response (for a cut)
        self._items: dict[int, JSON] = {}  # output items by output_index, latest state
        self._parts: dict[tuple[int, int], JSON] = {}  # content parts by output, content index
        # what was streamed of a part (by its indexes) or of a call's arguments (content -1)
        # that is not done yet: a cut shows it, as OpenAI's incomplete response would
        self._pieces: dict[tuple[int, int], list[str]] = {}

    def chunk(self, event: JSON) -> bytes:
        """The event as a frame (the terminal one: held back)."""
        kind = event.get("type")
        if kind in TERMINAL:
            self._terminal = event
            return b""
        if isinstance(event.get("sequence_number"), int):
            self._last_sequence = event["sequence_number"]
        self._remember(kind, event)
        return sse_frame(event)

    def _remember(self, kind: Any, event: JSON) -> None:
        index, content = event.get("output_index"), event.get("content_index", 0)
        if isinstance(event.get("response"), dict):
            self._response = event["response"]
        elif not isinstance(index, int) or not isinstance(content, int):
            return
        elif kind in _PIECE_KINDS:
            at = (index, -1 if kind == _ARGUMENTS_DELTA else content)
            self._pieces.setdefault(at, []).append(str(event.get("delta") or ""))
        elif kind in ("response.output_item.added", "response.output_item.done"):
            if isinstance(event.get("item"), dict):
                self._items[index] = event["item"]
        elif kind in ("response.content_part.added", "response.content_part.done"):
            at = (index, content)
            if isinstance(event.get("part"), dict):
                self._parts[at] = event["part"]
            if kind == "response.content_part.done":
                self._pieces.pop(at, None)
            else:  # open: a cut closes it (responses_closing.py)
                self._pieces.setdefault(at, [])

    def _output_so_far(self) -> list[JSON]:
        """The output items as streamed so far; those left open incomplete, with what was
        streamed of their text, refusal or arguments."""
        return [self._as_left(index, item) for index, item in sorted(self._items.items())]

    def _as_left(self, index: int, item: JSON) -> JSON:
        if item.get("status") != "in_progress":
            return item
        left = item | {"status": "incomplete"}
        if item.get("type") == "message":
            parts = sorted((c, p) for (i, c), p in self._parts.items() if i == index)
            left["content"] = [self._filled(part, (index, c)) for c, part in parts]
        elif (index, -1) in self._pieces:
            left["arguments"] = "".join(self._pieces[(index, -1)])
        return left

    def _filled(self, part: JSON, at: tuple[int, int]) -> JSON:
        pieces = self._pieces.get(at)
        if pieces is None:
            return part
        return part | {"refusal" if part.get("type") == "refusal" else "text": "".join(pieces)}

    def tail(self, usage: Usage, charged: int) -> list[bytes]:
        """The terminal event, its usage in full with the cost."""
        if self._terminal is None:
            return []
        response = self._terminal.get("response")
        if isinstance(response, dict):
            response["usage"] = responses_usage(usage, cost_field(charged))
        return [sse_frame(self._terminal)]

    def cut(self, usage: Usage, charged: int) -> list[bytes]:
        """Cut at the output cap (an upstream that streamed on past `max_output_tokens`): the
        open items' closing events (providers/responses_closing.py), then `response.incomplete`
        for max_output_tokens, the items so far (those left open marked incomplete), the usage
        with its cost."""
        output = self._output_so_far()
        left = {i: item for i, item in zip(sorted(self._items), output, strict=True)
                if self._items[i].get("status") == "in_progress"}  # fmt: skip
        response = self._response | {
            "status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"},
            "output": output, "usage": responses_usage(usage, cost_field(charged)),
        }  # fmt: skip
        events = [*closing_events(left, self._pieces), {"type": "response.incomplete",
                                                         "response": response}]  # fmt: skip
        for event in events:
            self._last_sequence += 1
            event["sequence_number"] = self._last_sequence
        return [b"".join(sse_frame(event) for event in events)]

    def error(self, status: int, message: str, error_type: str, code: str) -> bytes:
        """`response.failed` once the upstream's response began (what OpenAI sends, and the one
        Codex acts on: it ignores `error` events), the items so far, the upstream's error code;
        before that, OpenAI's stream `error` event."""
        self._last_sequence += 1
        if not self._response:
            return sse_frame({"type": "error", "code": code, "message": message, "param": None,
                              "sequence_number": self._last_sequence})  # fmt: skip
        response = self._response | {
            "status": "failed", "error": failure_error(message, code),
            "output": self._output_so_far(), "usage": None,
        }  # fmt: skip
        event = {"type": "response.failed", "sequence_number": self._last_sequence,
                 "response": response}  # fmt: skip
        return sse_frame(event)


StreamEncoder = OpenAIChunks | AnthropicEvents | ResponsesEvents | NativeResponsesEvents


def stream_encoder(call: ChatCall) -> StreamEncoder:
    """The encoder of the dialect the call came in."""
    if call.ingress.startswith(MESSAGES_ROUTE):
        return AnthropicEvents(call)
    if call.ingress == RESPONSES_ROUTE:
        native = not isinstance(call.context, ResponsesContext)
        return NativeResponsesEvents(call) if native else ResponsesEvents(call)
    return OpenAIChunks(call)


def answer_body(call: ChatCall, body: JSON, usage: Usage, charged: int) -> JSON:
    """A settled non-streamed answer in the call's dialect: chat completions get the usage with
    `cost_usd`, Responses the response object (usage with `cost_usd`), embeddings their usage
    with `cost_usd`, Messages stay as they are but for the counts charged when the box counted
    them itself."""
    if call.ingress == CHAT_ROUTE:
        body["usage"] = usage_body(usage, charged)
    elif call.ingress.startswith(MESSAGES_ROUTE):
        return _charged_counts(body, usage)
    elif call.ingress in (RESPONSES_ROUTE, COMPACT_ROUTE):
        extra = cost_field(charged)
        if not isinstance(call.context, ResponsesContext):  # native: already a response
            body["usage"] = responses_usage(usage, extra)
            answer = body
        else:
            answer = translate_completion(body, usage, call.context, usage_extra=extra)
            answer = compacted_response(answer) if call.context.compaction else answer
        return compaction_answer(answer, call.kept) if call.ingress == COMPACT_ROUTE else answer
    elif call.ingress == EMBEDDINGS_ROUTE:
        tokens = {"prompt_tokens": usage.input_tokens, "total_tokens": usage.input_tokens}
        body["usage"] = tokens | cost_field(charged)
    return body
