"""Server-sent events: an incremental parser for upstream streams and the encoders for ours.

The parser follows the SSE rules (blank line ends an event; `data:` lines joined with newlines;
one optional space after the colon; comment lines start with `:`; CR, LF and CRLF line ends)
and survives any split of the byte stream. The encoders write what OpenAI's API writes:
`data: {compact json}\\n\\n`, `data: [DONE]\\n\\n`, and `: keep-alive` comments.
"""

from __future__ import annotations

import json
from typing import Any

from codelace_box.providers.base import SSEEvent

DONE = b"data: [DONE]\n\n"
KEEPALIVE = b": keep-alive\n\n"
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


class SSEParser:
    """Bytes in, complete events out; keeps the unfinished tail between calls."""

    __slots__ = ("_tail",)

    def __init__(self) -> None:
        self._tail = b""

    def feed(self, data: bytes) -> list[SSEEvent]:
        """Every event completed by `data` (possibly none)."""
        buffer = self._tail + data if self._tail else data
        if b"\r" in buffer:
            keep_cr = buffer.endswith(b"\r")  # a CRLF may be split across reads
            if keep_cr:
                buffer = buffer[:-1]
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            if keep_cr:
                buffer += b"\r"
        *blocks, self._tail = buffer.split(b"\n\n")
        events: list[SSEEvent] = []
        for block in blocks:
            event = parse_block(block)
            if event is not None:
                events.append(event)
        return events

    def flush(self) -> list[SSEEvent]:
        """The last event when the stream ended without its blank line."""
        tail, self._tail = self._tail.rstrip(b"\r\n"), b""
        event = parse_block(tail) if tail else None
        return [event] if event is not None else []


def parse_block(block: bytes) -> SSEEvent | None:
    """One event from its lines; None for comment-only or data-less blocks."""
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
    if not data_lines:
        return None
    return SSEEvent(data="\n".join(data_lines), event=event_name)


def encode_json(value: Any) -> bytes:
    """Compact UTF-8 JSON, as OpenAI writes it."""
    return _dumps(value).encode()


def encode_chunk(chunk: dict[str, Any]) -> bytes:
    """One `data:` event carrying a JSON object."""
    return b"data: " + encode_json(chunk) + b"\n\n"


def encode_error(message: str, error_type: str, code: str) -> bytes:
    """The event that ends a stream that failed after it started (the OpenAI SDK raises it)."""
    return encode_chunk({"error": {"message": message, "type": error_type, "code": code}})
