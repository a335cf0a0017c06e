"""The upstream client hands over every byte that arrived before a connection broke: a stream's
last events, read a moment after the upstream sent them and hung up, are relayed (and counted)
before the failure, which comes at the next read. An answer's head that never ends is a read
timeout, and a call cancelled meanwhile stays cancelled."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import uvloop

from codelace_box.gateway.client import UpstreamBroken, UpstreamClient, UpstreamReadTimeout
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


HINT = b"HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload\r\n\r\n"
CONNECT_SEC, READ_SEC = 0.1, 0.1  # the head is due within 0.3 s
HEAD_DUE_SEC = CONNECT_SEC + 2 * READ_SEC


async def _hints_without_end(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A 103 every 0.03 s (each within the read timeout), never the answer, for 2 s at most."""
    await reader.readuntil(b"\r\n\r\n")
    try:
        for _ in range(60):
            if writer.is_closing():  # the box hung up (uvloop refuses a write then)
                break
            writer.write(HINT)
            await writer.drain()
            await asyncio.sleep(0.03)
    except ConnectionError:
        pass
    writer.close()


async def _sent_to_hints(outside_cancel_sec: float | None) -> BaseException | None:
    """What `send` to an upstream that never ends its head raises, with the sending task
    cancelled from elsewhere after `outside_cancel_sec` (a client gone, the server stopping);
    the task's own count of cancellations is 0 again afterwards unless it stays cancelled."""
    handlers: list[asyncio.Task[None]] = []

    async def upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.append(asyncio.current_task())  # type: ignore[arg-type]
        await _hints_without_end(reader, writer)

    server = await asyncio.start_server(upstream, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, UpstreamClient(CONNECT_SEC, READ_SEC) as client:
        request = UpstreamRequest(f"http://127.0.0.1:{port}/v1/chat/completions", {}, {})

        async def sending() -> None:
            if outside_cancel_sec is not None:
                asyncio.get_running_loop().call_later(outside_cancel_sec, task.cancel)
            await client.send(request)

        task = asyncio.get_running_loop().create_task(sending())
        try:
            await task
        except BaseException as exc:  # handed to the test to look at
            assert task.cancelling() == (1 if isinstance(exc, asyncio.CancelledError) else 0)
            return exc
        finally:
            await asyncio.gather(*handlers)  # the upstream saw the connection closed
    return None


async def test_a_head_that_never_ends_is_a_read_timeout() -> None:
    assert isinstance(await _sent_to_hints(None), UpstreamReadTimeout)


async def test_a_call_cancelled_while_it_waits_for_the_head_stays_cancelled() -> None:
    """Not read as the head's timeout: the cancellation (a client gone) goes on up."""
    assert isinstance(await _sent_to_hints(HEAD_DUE_SEC / 3), asyncio.CancelledError)


def test_a_cancellation_that_comes_with_the_deadline_stays_a_cancellation() -> None:
    """On the server's loop (uvloop: timers by the millisecond, run in the order they were
    set) the outside cancellation and the head's deadline fire in the same turn: the task was
    cancelled twice and takes back only the deadline's."""
    loop = uvloop.new_event_loop()
    try:
        outcome = loop.run_until_complete(_sent_to_hints(HEAD_DUE_SEC))
    finally:
        loop.close()
    assert isinstance(outcome, asyncio.CancelledError)


async def _head_after(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """The answer's head after the seconds the request's path names (`/after/0.5`), a 103
    every 0.03 s meanwhile (each within the read timeout)."""
    head = await reader.readuntil(b"\r\n\r\n")
    ends = time.monotonic() + float(head.split(b" ", 2)[1].rsplit(b"/", 1)[1])
    try:
        while time.monotonic() < ends and not writer.is_closing():
            writer.write(HINT)
            await writer.drain()
            await asyncio.sleep(0.03)
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}")
        await writer.drain()
    except ConnectionError:
        pass
    writer.close()


async def test_each_call_has_its_own_head_deadline() -> None:
    """The client's calls share one timer. The first call's head came at once; when the timer
    fires at its deadline's moment, the second call (begun 0.6 s later) and the third (0.65 s)
    are not due: the second gets its head within its own deadline, after the first's, and the
    timer, set again, ends the third, whose head never comes, at its own."""
    server = await asyncio.start_server(_head_after, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/after/"
    async with server, UpstreamClient(0.1, 0.4) as client:  # heads due within 0.9 s
        first = await client.send(UpstreamRequest(url + "0", {}, {}))
        assert await first.read_json() == {}
        await asyncio.sleep(0.6)

        async def second() -> Any:  # due at 1.5 s, its head at 1.1 s
            return await (await client.send(UpstreamRequest(url + "0.5", {}, {}))).read_json()

        async def third() -> None:  # due at 1.55 s; the upstream would answer at 3.65 s
            await asyncio.sleep(0.05)
            with pytest.raises(UpstreamReadTimeout):
                await client.send(UpstreamRequest(url + "3", {}, {}))

        assert (await asyncio.gather(second(), third()))[0] == {}
