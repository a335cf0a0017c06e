"""A fast fake OpenAI and Anthropic upstream for the benchmark: canned Chat Completions and
Messages answers over raw asyncio (uvloop), HTTP/1.1 keep-alive, so it costs the shared CPU as
little as possible.

A request whose body contains `"stream":true` gets an SSE stream of `CHUNKS` content chunks
plus the finish chunk, the usage chunk and `[DONE]` (chunked transfer encoding); any other
request gets a `chat.completion` JSON body. A request to `/v1/messages` gets Anthropic's
`message`, or its event stream with as many text deltas. Run: python -m bench.upstream --port P
"""

from __future__ import annotations

import argparse
import asyncio
import json

CHUNKS = 16
USAGE = {"prompt_tokens": 12, "completion_tokens": CHUNKS, "total_tokens": 12 + CHUNKS}


def _completion_body() -> bytes:
    body = {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1741569952,
        "model": "gpt-bench",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "word " * CHUNKS, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": USAGE,
        "system_fingerprint": "fp_bench",
    }
    return json.dumps(body, indent=2).encode()


def _chunk(delta: dict[str, object], finish: str | None = None) -> bytes:
    chunk = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1741569952,
        "model": "gpt-bench",
        "system_fingerprint": "fp_bench",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        "usage": None,
    }
    return b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n"


def _stream_events() -> list[bytes]:
    events = [_chunk({"role": "assistant", "content": ""})]
    events += [_chunk({"content": f"word{i} "}) for i in range(CHUNKS)]
    events.append(_chunk({}, "stop"))
    usage = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1741569952,
             "model": "gpt-bench", "choices": [], "usage": USAGE}  # fmt: skip
    events.append(b"data: " + json.dumps(usage, separators=(",", ":")).encode() + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    return events


def _chunked(parts: list[bytes]) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


COMPLETION = _completion_body()
RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
    len(COMPLETION),
    COMPLETION,
)
STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
)
STREAM_EVENTS = _stream_events()
# What a real model's stream looks like on the wire: a few network writes, not one.
STREAM_WRITES = [
    STREAM_HEAD + _chunked(STREAM_EVENTS[:1])[:-5],
    _chunked(STREAM_EVENTS[1:9])[:-5],
    _chunked(STREAM_EVENTS[9:]),
]


def _event(event: dict[str, object]) -> bytes:
    data = json.dumps(event, separators=(",", ":"))
    return f"event: {event['type']}\ndata: {data}\n\n".encode()


ANTHROPIC_USAGE = {"input_tokens": 12, "cache_creation_input_tokens": 0,
                   "cache_read_input_tokens": 0, "output_tokens": CHUNKS}  # fmt: skip
MESSAGE = json.dumps({
    "id": "msg_bench", "type": "message", "role": "assistant", "model": "claude-bench",
    "content": [{"type": "text", "text": "word " * CHUNKS}], "stop_reason": "end_turn",
    "stop_sequence": None, "usage": ANTHROPIC_USAGE,
}).encode()  # fmt: skip
MESSAGE_RESPONSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
    % (len(MESSAGE), MESSAGE)
)
_START = {"id": "msg_bench", "type": "message", "role": "assistant", "model": "claude-bench",
          "content": [], "stop_reason": None, "stop_sequence": None,
          "usage": ANTHROPIC_USAGE | {"output_tokens": 1}}  # fmt: skip
MESSAGE_EVENTS = [
    _event({"type": "message_start", "message": _START}),
    _event(
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    ),
    _event({"type": "ping"}),
    *[
        _event(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": f"word{i} "},
            }
        )
        for i in range(CHUNKS)
    ],
    _event({"type": "content_block_stop", "index": 0}),
    _event(
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": ANTHROPIC_USAGE,
        }
    ),
    _event({"type": "message_stop"}),
]
MESSAGE_WRITES = [
    STREAM_HEAD + _chunked(MESSAGE_EVENTS[:3])[:-5],
    _chunked(MESSAGE_EVENTS[3:11])[:-5],
    _chunked(MESSAGE_EVENTS[11:]),
]


class UpstreamProtocol(asyncio.Protocol):
    """One keep-alive connection: read request heads and bodies, answer at once."""

    def __init__(self) -> None:
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buffer[:head_end].lower() + b"\r\n"
            start = head.find(b"content-length:")
            length = int(head[start + 15 : head.find(b"\r\n", start)]) if start >= 0 else 0
            end = head_end + 4 + length
            if len(self.buffer) < end:
                return
            body, self.buffer = self.buffer[head_end + 4 : end], self.buffer[end:]
            messages = head.startswith(b"post /v1/messages")
            self.answer(b'"stream":true' in body, messages)

    def answer(self, stream: bool, messages: bool = False) -> None:
        assert self.transport is not None
        if not stream:
            self.transport.write(MESSAGE_RESPONSE if messages else RESPONSE)
            return
        writes = MESSAGE_WRITES if messages else STREAM_WRITES
        loop = asyncio.get_running_loop()
        self.transport.write(writes[0])
        loop.call_soon(self.transport.write, writes[1])
        loop.call_soon(lambda: loop.call_soon(self.transport.write, writes[2]))  # type: ignore[union-attr]


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(UpstreamProtocol, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    import uvloop

    uvloop.run(serve(args.port))


if __name__ == "__main__":
    main()
