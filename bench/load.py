"""A bounded loopback load generator: N keep-alive connections POSTing one canned request.
With several `--url`s (boxes on one database) the connections are spread over them in turn.

Raw asyncio protocols on uvloop (no HTTP library) so the generator itself costs little of the
shared CPU. It stops after `--requests` answers or `--max-seconds`, whichever comes first, and
prints one JSON object: count, errors, seconds, rate, latency percentiles (ms) and, for
streams, time to the first `data:` event. Run as its own process by bench.run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class Tally:
    remaining: int
    deadline: float
    latencies: list[float] = field(default_factory=list)
    first_bytes: list[float] = field(default_factory=list)
    errors: int = 0
    statuses: dict[str, int] = field(default_factory=dict)


class Connection(asyncio.Protocol):
    """Sends the request, waits for the whole answer, repeats while work is left."""

    def __init__(self, request: bytes, tally: Tally, done: asyncio.Future[None]) -> None:
        self.request = request
        self.tally = tally
        self.done = done
        self.transport: asyncio.Transport | None = None
        self.reset()

    def reset(self) -> None:
        self.buffer = b""
        self.head_end = -1
        self.length: int | None = None
        self.first_data = 0.0
        self.started = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.send()

    def send(self) -> None:
        tally = self.tally
        if tally.remaining <= 0 or time.perf_counter() > tally.deadline:
            if not self.done.done():
                self.done.set_result(None)
            assert self.transport is not None
            self.transport.close()
            return
        tally.remaining -= 1
        self.reset()
        self.started = time.perf_counter()
        assert self.transport is not None
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        if not self.first_data and b"data: " in data:
            self.first_data = time.perf_counter()
        self.buffer += data
        if self.head_end < 0:
            self.head_end = self.buffer.find(b"\r\n\r\n")
            if self.head_end < 0:
                return
            head = self.buffer[: self.head_end].lower() + b"\r\n"
            start = head.find(b"content-length:")
            if start >= 0:
                self.length = int(head[start + 15 : head.find(b"\r\n", start + 1)].strip() or 0)
        if self.complete():
            self.finish()

    def complete(self) -> bool:
        body_start = self.head_end + 4
        if self.length is not None:
            return len(self.buffer) - body_start >= self.length
        return self.buffer.endswith(b"0\r\n\r\n") and (
            len(self.buffer) == body_start + 5 or self.buffer.endswith(b"\r\n0\r\n\r\n")
        )

    def finish(self) -> None:
        now = time.perf_counter()
        status = self.buffer[9:12].decode()
        tally = self.tally
        tally.statuses[status] = tally.statuses.get(status, 0) + 1
        ended = any(end in self.buffer for end in STREAM_ENDS)
        if status == "200" and (self.length is not None or ended):
            tally.latencies.append(now - self.started)
            if self.first_data:
                tally.first_bytes.append(self.first_data - self.started)
        else:
            tally.errors += 1
        self.send()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


STREAM_ENDS = (b"data: [DONE]", b"event: message_stop", b"event: response.completed")


def percentile(values: list[float], share: float) -> float:
    """The value below which `share` of the sorted values fall, in ms."""
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, int(share * len(ordered)))
    return round(ordered[index] * 1000, 3)


def build_request(url: str, key: str, body: bytes) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    head = (
        f"POST {parts.path} HTTP/1.1\r\nhost: {parts.netloc}\r\n"
        f"authorization: Bearer {key}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    )
    return parts.hostname or "127.0.0.1", parts.port or 80, head.encode() + body


async def run(args: argparse.Namespace) -> dict[str, object]:
    fields: dict[str, object] = {"model": args.model, "stream": args.stream}
    if args.url[0].endswith("/v1/responses"):  # the Responses API's own body
        fields |= {"input": "Say hello", "max_output_tokens": 64}
    else:
        fields |= {"messages": [{"role": "user", "content": "Say hello"}], "max_tokens": 64}
    body = json.dumps(fields, separators=(",", ":")).encode()
    targets = [build_request(url, args.key, body) for url in args.url]
    loop = asyncio.get_running_loop()
    tally = Tally(args.requests, time.perf_counter() + args.max_seconds)
    began = time.perf_counter()
    waits = []
    for number in range(args.concurrency):
        host, port, request = targets[number % len(targets)]
        done: asyncio.Future[None] = loop.create_future()
        await loop.create_connection(lambda d=done, r=request: Connection(r, tally, d), host, port)
        waits.append(done)
    await asyncio.gather(*waits)
    seconds = time.perf_counter() - began
    ok = len(tally.latencies)
    return {
        "count": ok,
        "errors": tally.errors,
        "statuses": tally.statuses,
        "seconds": round(seconds, 3),
        "rate": round(ok / seconds, 1) if seconds else 0.0,
        "p50_ms": percentile(tally.latencies, 0.5),
        "p90_ms": percentile(tally.latencies, 0.9),
        "p99_ms": percentile(tally.latencies, 0.99),
        "mean_ms": round(statistics.fmean(tally.latencies) * 1000, 3) if ok else 0.0,
        "ttfb_p50_ms": percentile(tally.first_bytes, 0.5),
        "ttfb_p99_ms": percentile(tally.first_bytes, 0.99),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True, action="append", help="repeat: spread over")
    parser.add_argument("--key", default="none")
    parser.add_argument("--model", default="bench/gpt")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--max-seconds", type=float, default=20.0)
    parser.add_argument("--stream", action="store_true")
    args = parser.parse_args()
    import uvloop

    result = uvloop.run(run(args))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
