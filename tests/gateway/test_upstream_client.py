"""The upstream client hands over every byte that arrived before a connection broke: a stream's
last events, read a moment after the upstream sent them and hung up, are relayed (and counted)
before the failure, which comes at the next read."""

from __future__ import annotations

import asyncio

import pytest

from codelace_box.gateway.client import UpstreamBroken, UpstreamClient
from codelace_box.providers.base import UpstreamRequest

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
EVENTS = b'data: {"n": 1}\n\ndata: {"n": 2}\n\n'


async def _hang_up_after_events(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer the head and two events in one chunk, then close without the final chunk."""
    await reader.readuntil(b"\r\n\r\n")
    writer.write(HEAD + f"{len(EVENTS):x}\r\n".encode() + EVENTS + b"\r\n")
    await writer.drain()
    writer.close()


async def test_events_that_arrived_before_the_upstream_hung_up_come_first() -> None:
    server = await asyncio.start_server(_hang_up_after_events, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, UpstreamClient(2.0, 2.0) as client:
        request = UpstreamRequest(f"http://127.0.0.1:{port}/v1/chat/completions", {}, {})
        response = await client.send(request)
        await asyncio.sleep(0.3)  # the events and the hang-up have both arrived meanwhile
        assert await response.read_chunk() == EVENTS
        with pytest.raises(UpstreamBroken):
            await response.read_chunk()
        response.close()
