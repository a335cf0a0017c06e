"""A fast fake OpenAI upstream for the benchmark: canned Chat Completions answers over raw
asyncio (uvloop), HTTP/1.1 keep-alive, so it costs the shared CPU as little as possible.

A request whose body contains `"stream":true` gets an SSE stream of `CHUNKS` content chunks
plus the finish chunk, the usage chunk and `[DONE]` (chunked transfer encoding); any other
request gets a `chat.completion` JSON body. Run: python -m bench.upstream --port P
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
            self.answer(b'"stream":true' in body)

    def answer(self, stream: bool) -> None:
        assert self.transport is not None
        if not stream:
            self.transport.write(RESPONSE)
            return
        loop = asyncio.get_running_loop()
        self.transport.write(STREAM_WRITES[0])
        loop.call_soon(self.transport.write, STREAM_WRITES[1])
        loop.call_soon(lambda: loop.call_soon(self.transport.write, STREAM_WRITES[2]))  # type: ignore[union-attr]


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
