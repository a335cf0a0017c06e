"""Relaying one upstream stream to the client as OpenAI chunks, then settling it.

The relay reads the upstream as bytes arrive, translates its events with the provider's
StreamTranslator and writes every chunk of one read in one send. While the upstream is silent
it writes `: keep-alive` comments. At the normal end it settles first, then sends the usage
chunk (with `cost_usd`, only if the client asked for usage) and `data: [DONE]`. A stream that
fails costs nothing: before the client got any byte its error is raised (for the caller to
answer as a plain JSON error with its status), after that it ends with an error event; an
upstream event longer than `gateway.max_sse_event_bytes` is such a failure. A client that goes
away (its task is cancelled, or a send fails) is charged, in `finally`, for what the upstream
produced: its usage if it came, else the relayed output counted and the row marked estimated;
the upstream connection is closed so it stops generating.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from codelace_box.db.batch import WriteBatch
from codelace_box.gateway.client import UpstreamBroken
from codelace_box.gateway.dialects import stream_encoder
from codelace_box.gateway.metering import settle, settle_in
from codelace_box.gateway.outcome import client_error, settlement
from codelace_box.gateway.request import ChatCall
from codelace_box.gateway.streaming import KEEPALIVE, SSEParser
from codelace_box.gateway.upstream import Opened
from codelace_box.providers.base import SSEEvent, StreamTranslator, Usage

Send = Callable[[bytes], Awaitable[Any]]
CHARS_PER_TOKEN = 4
DRAIN_TIMEOUT_SEC = 1.0
log = logging.getLogger("codelace_box.gateway")
STREAM_HEADERS = {
    "cache-control": "no-cache",
    "x-accel-buffering": "no",
}


class ClientGone(Exception):
    """Writing to the client failed: it closed the connection."""


class StreamRelay:
    """One streamed call from the upstream's 200 answer to the client's last byte."""

    def __init__(
        self, call: ChatCall, opened: Opened, keepalive_sec: float, writes: WriteBatch
    ) -> None:
        self.call = call
        self.opened = opened
        self.keepalive_sec = keepalive_sec
        self.writes = writes
        self.translator: StreamTranslator = call.adapter.stream_translator(call.route.id)
        self._parser = SSEParser(opened.response.limits.max_event_bytes)
        self.encoder = stream_encoder(call)
        self.pending = b""  # bytes read from the upstream before the relay began
        self._sent_any = False  # whether the client got any byte of the stream yet
        self._settled = False
        self._last_send = time.monotonic()  # when the client last got bytes from us

    async def run(self, send: Send) -> None:
        """Relay to the end; raises only the error of a failure before the first byte was sent
        (client failures and later upstream failures are handled here)."""
        response = self.opened.response
        try:
            await self._relay(send)
        except ClientGone:
            pass
        except Exception as exc:
            await self._fail(send, exc)
        finally:
            if not self._settled:  # the client went away: charge what was produced
                self._settled = True
                produced = self._produced()
                settle(settlement(self.call, produced, "abandoned", error_code="client_closed"))
            response.close()

    async def _relay(self, send: Send) -> None:
        translator = self.translator
        while not translator.finished:
            data = await self._read(send)
            events = self._parser.feed(data) if data else self._parser.flush()
            out, failure = self._translate(events)
            failure = failure or self._parser.too_large
            if out:
                await self._send(send, b"".join(out))
            if failure is not None:
                raise failure
            if not data:
                break
        tail = [self.encoder.chunk(c) for c in translator.finish()]
        if not translator.finished and translator.usage is None:
            raise UpstreamBroken("the upstream stream ended before it was complete")
        usage = self._produced()
        self._settled = True  # from here the settlement commits even if we are cancelled
        item = settlement(self.call, usage, "ok")
        try:
            charged = await self.writes.submit(partial(settle_in, item=item)) or 0
        except Exception:  # not settled (e.g. the database stayed locked): the client has the
            charged = settle(item) or 0  # output, so once more, alone (raises if that fails too)
        tail.extend(self.encoder.tail(usage, charged))
        await self._send(send, b"".join(tail))
        await self.opened.response.drain(DRAIN_TIMEOUT_SEC)

    def _translate(self, events: list[SSEEvent]) -> tuple[list[bytes], Exception | None]:
        """The encoded chunks of some events; an error event stops there (what came before
        it in the same read is still relayed)."""
        out: list[bytes] = []
        try:
            for event in events:
                out.extend(self.encoder.chunk(c) for c in self.translator.feed(event))
        except Exception as exc:
            return out, exc
        return out, None

    async def _read(self, send: Send) -> bytes:
        """The next upstream bytes, sending keep-alive comments while the client got nothing
        for `keepalive_sec` (upstream bytes that relay nothing, such as its own comments, do
        not count)."""
        if self.pending:
            data, self.pending = self.pending, b""
            return data
        while True:
            wait = self._last_send + self.keepalive_sec - time.monotonic()
            if wait > 0:
                try:
                    async with asyncio.timeout(wait):
                        return await self.opened.response.read_chunk()
                except TimeoutError:
                    pass
            await self._send(send, KEEPALIVE)

    async def _send(self, send: Send, data: bytes) -> None:
        try:
            await send(data)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise ClientGone from exc
        self._last_send = time.monotonic()
        self._sent_any = True

    def _produced(self) -> Usage:
        """The upstream's usage, or an estimate of what it produced so far."""
        translator = self.translator
        if translator.usage is not None:
            return translator.usage
        output = -(-translator.output_chars // CHARS_PER_TOKEN)
        seen = translator.input_tokens_seen
        return Usage(seen or self.call.input_estimate, output, estimated=True)

    async def _fail(self, send: Send, exc: Exception) -> None:
        """A failed stream: nothing charged; an error event sent, or raised when the client got
        no byte yet."""
        error = client_error(exc)
        self.opened.response.close()
        if not self._settled:
            self._settled = True
            code = error.code if error else "internal_error"
            item = settlement(self.call, None, "error", error_code=code, charge=False)
            try:
                await self.writes.submit(partial(settle_in, item=item))
            except Exception:  # the hold stays until the next start releases it
                log.exception("could not release the hold of %s", self.call.request_id)
        if not self._sent_any:
            raise (error or exc) from None
        if error is None:
            log.error("stream %s failed", self.call.request_id, exc_info=exc)
            status, message = 500, "internal error"
            error_type, code = "server_error", "internal_error"
        else:
            status, message = error.status, error.message
            error_type, code = error.error_type, error.code
        with contextlib.suppress(Exception):
            await send(self.encoder.error(status, message, error_type, code))
