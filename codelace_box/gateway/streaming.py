"""Server-sent events: an incremental parser for upstream streams and the encoders for ours.

The parser follows the SSE rules (blank line ends an event; `data:` lines joined with newlines;
one optional space after the colon; comment lines start with `:`; CR, LF and CRLF line ends;
a UTF-8 byte order mark at the start is dropped), but for llama.cpp's `error:` field (which
the rules would skip, so its failure read as a whole answer): an `error` event with its value
as data
and survives any split of the byte stream, in time linear in its length and in memory bounded
by the longest event it takes (`gateway.max_sse_event_bytes`). The encoders write what OpenAI's
API writes: `data: {compact json}\\n\\n`, `data: [DONE]\\n\\n`, and `: keep-alive` comments.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from codelace_box.gateway.client import (
    DEFAULT_MAX_EVENT_BYTES,
    UpstreamBroken,
    UpstreamTooLarge,
    json_of,
)
from codelace_box.gateway.request import ChatCall
from codelace_box.jsonwire import NOT_JSON, dumps, loads
from codelace_box.providers.anthropic_whole import STREAMED_ANSWERS
from codelace_box.providers.base import SSEEvent
from codelace_box.providers.responses_passthrough import NativeResponses
from codelace_box.providers.responses_whole import response_from_stream

DONE = b"data: [DONE]\n\n"
KEEPALIVE = b": keep-alive\n\n"
BOM = b"\xef\xbb\xbf"
LAST_EVENTS = ("message_stop", "response.completed", "response.incomplete", "response.failed",
               "error")  # fmt: skip


class SSEParser:
    """Bytes in, complete events out; keeps the unfinished event between calls.

    Each byte is looked at a bounded number of times however an event is split, so a large
    event costs linear time. An event longer than `max_event_bytes` is never buffered: the
    parser stops there, drops what it held and sets `too_large`; it ignores any later bytes.
    """

    __slots__ = ("_cr", "_event", "_start", "max_event_bytes", "too_large")

    def __init__(self, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        self._event = bytearray()  # the unfinished event, its line ends already LF
        self._cr = False  # the last byte fed was a CR: an LF right after it belongs to it
        self._start: bytes | None = b""  # the stream's first bytes while they may be a BOM
        self.max_event_bytes = max_event_bytes
        self.too_large: UpstreamTooLarge | None = None

    def feed(self, data: bytes) -> list[SSEEvent]:
        """Every event completed by `data` (possibly none)."""
        if self._start is not None:
            data = self._without_bom(data)
        data = self._lf_only(data)
        if self.too_large is not None or not data:
            return []
        pending, start = self._event, 0
        events: list[SSEEvent] = []
        if pending.endswith(b"\n") and data.startswith(b"\n"):  # a blank line split in two
            self._complete(bytes(pending[:-1]), events)
            pending.clear()
            start = 1
        limit = self.max_event_bytes
        while self.too_large is None and (end := data.find(b"\n\n", start)) >= 0:
            block = bytes(pending) + data[start:end] if pending else data[start:end]
            pending.clear()
            if len(block) > limit:  # (`_complete`, in place: once for each event)
                self._overflow()
            elif (event := parse_block(block)) is not None:
                events.append(event)
            start = end + 2
        if self.too_large is None:
            self._hold(data, start)
        return events

    def _hold(self, data: bytes, start: int) -> None:
        """Keep the unfinished event's bytes (`data` from `start` on), or stop past the limit.
        A line end last may be the first half of the blank line that closes the event, so it
        is not counted: an event of exactly the limit is taken however the reads cut it."""
        pending = self._event
        ends_line = data.endswith(b"\n") if len(data) > start else pending.endswith(b"\n")
        if len(pending) + len(data) - start - ends_line > self.max_event_bytes:
            self._overflow()
        else:
            pending += memoryview(data)[start:]

    def flush(self) -> list[SSEEvent]:
        """The last event when the stream ended without its blank line."""
        tail = bytes(self._event).rstrip(b"\n")
        self._event.clear()
        if self.too_large is not None or not tail:
            return []
        event = parse_block(tail)
        return [event] if event is not None else []

    def _without_bom(self, data: bytes) -> bytes:
        """`data` without the byte order mark the stream may start with (the SSE rules drop
        one there; it hid the first event's `data` field), which may be split across reads."""
        start = self._start + data if self._start else data
        if len(start) < len(BOM) and BOM.startswith(start):
            self._start = start
            return b""
        self._start = None
        return start.removeprefix(BOM)

    def _lf_only(self, data: bytes) -> bytes:
        """`data` with CRLF and CR line ends made LF (a CRLF may be split across reads)."""
        if self._cr:
            self._cr = False
            if data.startswith(b"\n"):
                data = data[1:]
        if data.find(b"\r") >= 0:  # (`in` on bytes tries the operand as an int first)
            self._cr = data.endswith(b"\r")
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        return data

    def _complete(self, block: bytes, events: list[SSEEvent]) -> None:
        if len(block) > self.max_event_bytes:
            self._overflow()
        elif (event := parse_block(block)) is not None:
            events.append(event)

    def _overflow(self) -> None:
        self._event = bytearray()
        self.too_large = UpstreamTooLarge(
            "the upstream sent a stream event larger than gateway.max_sse_event_bytes "
            f"({self.max_event_bytes} bytes)"
        )


def parse_block(block: bytes) -> SSEEvent | None:
    """One event from its lines; None for comment-only or data-less blocks."""
    if block.startswith(b"data: ") and block.find(b"\n") < 0:  # most events: one data line
        return SSEEvent(block[6:].decode("utf-8", "replace"))
    data_lines: list[str] = []
    event_name: str | None = None
    for raw in block.split(b"\n"):
        if not raw or raw.startswith(b":"):
            continue
        name, _, value = raw.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if name == b"data":
            data_lines.append(value.decode("utf-8", "replace"))
        elif name == b"event":
            event_name = value.decode("utf-8", "replace")
        elif name == b"error":  # llama.cpp's server: `error: {json}`, a failure, then [DONE]
            data_lines.append(value.decode("utf-8", "replace"))
            event_name = "error"
    if not data_lines:
        return None
    return SSEEvent(data="\n".join(data_lines), event=event_name)


def looks_like_sse(head: bytes | bytearray) -> bool:
    """Whether a body's first bytes are server-sent events (a field or a comment first: a
    stream of comments and blank data alone is a stream that ended, not some other body)."""
    return head.lstrip().startswith((b":", b"data:", b"event"))


class StreamEnd:
    """Whether an answer to an unstreamed call that is a stream (a compatible server that
    ignores `"stream": false`) has come to its last event (`data: [DONE]`, `message_stop`, a
    Responses terminal event), fed each part of the body as it is read (client.read_body): an
    upstream may hold its connection open after it. A body whose first bytes are no SSE is not
    looked at further (nor is one read whole at once: nothing is made for it here)."""

    __slots__ = ("_first", "_head", "_parser", "max_event_bytes")

    def __init__(self, max_event_bytes: int) -> None:
        self.max_event_bytes = max_event_bytes
        self._parser: SSEParser | None = None
        self._first = True
        self._head = b""  # the body's first bytes while they tell nothing yet (`undecided`)

    def __call__(self, part: bytes) -> bool:
        if self._first:
            head = (self._head + part if self._head else part).removeprefix(BOM).lstrip()
            if undecided(head):  # (told by its first bytes that are not blank, and enough
                self._head = head  # of them: a first read `da` of `data:` was no stream)
                return False
            self._first, self._head = False, b""
            if not looks_like_sse(head):
                return False
            self._parser, part = SSEParser(self.max_event_bytes), head
        parser = self._parser
        return parser is not None and any(map(is_last_event, parser.feed(part)))


def undecided(head: bytes) -> bool:
    """Whether a body's first bytes (their byte order mark and blanks dropped) are too few to
    tell a stream: none, or the start of a byte order mark or of a `data:` or `event` field."""
    return len(head) < 5 and any(mark.startswith(head) for mark in (BOM, b"data:", b"event"))


def is_last_event(event: SSEEvent) -> bool:
    """Whether an event ends its stream (OpenAI's `[DONE]`, Anthropic's `message_stop`, a
    Responses stream's completed, incomplete or failed response) or fails it (an `error` event,
    an OpenAI-compatible chunk that is an error, vLLM's `"object": "error"` too: the stream's
    answer is that failure, openai_merge.py)."""
    data = event.data
    if data.strip() == "[DONE]" or event.event in LAST_EVENTS:
        return True
    if not any(name in data for name in LAST_EVENTS):
        return False
    try:
        parsed = loads(data)
    except NOT_JSON:
        return False
    return isinstance(parsed, dict) and (
        parsed.get("type") in LAST_EVENTS
        or bool(parsed.get("error"))
        or parsed.get("object") == "error"  # (vLLM's error chunk)
    )


def encode_json(value: Any) -> bytes:
    """Compact UTF-8 JSON, as OpenAI writes it."""
    return dumps(value)


def encode_chunk(chunk: dict[str, Any]) -> bytes:
    """One `data:` event carrying a JSON object."""
    return b"data: " + dumps(chunk) + b"\n\n"  # (encode_json's: one call fewer a chunk)


def encode_error(message: str, error_type: str, code: str) -> bytes:
    """The event that ends a stream that failed after it started (the OpenAI SDK raises it)."""
    return encode_chunk({"error": {"message": message, "type": error_type, "code": code}})


def streamed_answer(
    raw: bytes, max_event_bytes: int, of_events: Callable[[list[SSEEvent]], Any]
) -> dict[str, Any] | None:
    """The chat completion (Messages `message`, Responses `response`: `of_events` reads it) a
    whole stream adds up to; None when the body is no such stream (or an event in it is too
    large)."""
    parser = SSEParser(max_event_bytes)
    events = parser.feed(raw) + parser.flush()
    return None if parser.too_large is not None else of_events(events)


async def answer_payload(call: ChatCall, raw: bytes | bytearray, max_event_bytes: int) -> Any:
    """The upstream's answer as JSON (a large one parsed off the loop: client.json_of); from an
    `openai` provider's Chat Completions (or an `anthropic` provider), a stream instead (a
    compatible server that ignores `"stream": false`) is read into the completion (or message)
    its events add up to (providers/openai_merge.py, anthropic_whole.py; a native Responses
    provider's: its final `response`, responses_whole.py)."""
    try:
        return await json_of(raw)
    except NOT_JSON:
        pass
    native = isinstance(call.adapter, NativeResponses)
    of_events = response_from_stream if native else STREAMED_ANSWERS.get(call.route.provider.kind)
    merged = None if of_events is None else streamed_answer(bytes(raw), max_event_bytes, of_events)
    if merged is None:
        raise UpstreamBroken("the upstream answered with a body that is not JSON")
    return merged
