"""Relaying one upstream stream to the client, in the dialect of its route, then settling it.

The relay reads the upstream as bytes arrive, translates its events with the provider's
StreamTranslator and writes every chunk of one read in one send. While the upstream is silent
it writes `: keep-alive` comments. At the normal end (the upstream's terminal event: what it
sends after is not waited for, its connection let go) it settles first, then sends the tail
(gateway/dialects.py: for chat completions the usage chunk with `cost_usd`, only if the client
asked for usage, and `data: [DONE]`; for /v1/messages the held-back `message_stop`). A stream that
fails costs nothing: before the client got any byte its error is raised (for the caller to
answer as a plain JSON error with its status), after that it ends with an error event; an
upstream event longer than `gateway.max_sse_event_bytes` is such a failure (but for the client
that got some of the answer: the box's own limit ended a stream the provider did, which is
charged what was counted, as at the cap), and a 200 that is no stream at all says what came
instead. A connection that breaks after the provider's final count
arrived ends the stream as a clean close there would. Output is counted as it arrives
(providers/tally.py, or the upstream's running usage): output past the reserved cap is not
relayed, the upstream is closed and the client's stream ends as one that hit max_tokens.
A client that goes away (its task is cancelled, or a send fails) does not stop the metering:
the upstream is read on in a background task the server's stop waits for, within the output
cap and the read timeout, and the call is charged the provider's usage (row `abandoned`), or,
if it never comes, an estimate never below what was seen (row also `estimated`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from functools import partial
from typing import Any

from codelace_box.crypto import mask_in, mask_tokens
from codelace_box.db.batch import WriteBatch
from codelace_box.db.failures import traceback_of
from codelace_box.gateway.client import UpstreamBroken, UpstreamReadTimeout, UpstreamTooLarge
from codelace_box.gateway.dialects import stream_encoder
from codelace_box.gateway.metering import Settlement, settle, settle_steps
from codelace_box.gateway.outcome import (
    UpstreamWentSilent,
    client_error,
    count_unheard_failure,
    failed,
    log_unsettled,
    settlement,
)
from codelace_box.gateway.request import ChatCall
from codelace_box.gateway.stream_usage import produced
from codelace_box.gateway.streaming import KEEPALIVE, SSEParser, looks_like_sse
from codelace_box.gateway.upstream import Opened
from codelace_box.metrics import ACTIVE_STREAMS
from codelace_box.providers.anthropic_whole import WHOLE_ANSWERS
from codelace_box.providers.base import SSEEvent, StreamTranslator
from codelace_box.providers.responses_passthrough import NativeResponses
from codelace_box.providers.responses_whole import events_of_response
from codelace_box.providers.tally import OutputTally

Send = Callable[[bytes], Awaitable[Any]]
Detach = Callable[[Coroutine[Any, Any, None]], None]  # runs a coroutine the stop waits for
END_GRACE_SEC = 1.0  # what an upstream held open after its last event is left to end it
HEAD_BYTES = 4096  # what is kept of a stream's start, to tell what came when it was no stream
log = logging.getLogger("codelace_box.gateway")
STREAM_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


class ClientGone(Exception):
    """Writing to the client failed: it closed the connection."""


class StreamRelay:
    """One streamed call from the upstream's 200 answer to the client's last byte."""

    def __init__(
        self,
        call: ChatCall,
        opened: Opened,
        writes: WriteBatch,
        *,
        keepalive_sec: float,
        read_timeout_sec: float,
        detach: Detach,
    ) -> None:
        self.call = call
        self.opened = opened
        self.keepalive_sec = keepalive_sec
        self.read_timeout_sec = read_timeout_sec
        self.writes = writes
        self.detach = detach
        self.translator: StreamTranslator = call.adapter.stream_translator(call.answer_model)
        self.tally = OutputTally()
        self._parser = SSEParser(opened.response.limits.max_event_bytes)
        self.encoder = stream_encoder(call)
        self.pending = b""  # bytes read from the upstream before the relay began
        self.content_by: float | None = None  # monotonic: output must have begun (stream_start)
        self._head = bytearray()  # the first bytes, while no event came (a body that is no SSE)
        self._whole: bytearray | None = bytearray()  # the body while no event came (a JSON answer)
        native = isinstance(call.adapter, NativeResponses)  # (a whole answer: a stream's events)
        self._of_answer = (
            events_of_response if native else WHOLE_ANSWERS.get(call.route.provider.kind)
        )
        self._sent_any = False  # whether the client got any byte of the stream yet
        self._settled = False
        self._capped = False  # the output reached the reserved cap: relay no more
        self._reading_on = False  # the client left; a background task reads the upstream
        self._let_go = False  # the upstream's stream ended: its connection is let go (let_go)
        self._last_send = call.started  # when the client last got bytes (or asked) from us

    async def run(self, send: Send) -> None:
        """Relay to the end; raises only the error of a failure before the first byte was sent
        (client failures and later upstream failures are handled here)."""
        ACTIVE_STREAMS.inc()
        try:
            await self._relay(send)
        except ClientGone:
            pass
        except Exception as exc:
            await self._fail(send, exc)
        finally:
            ACTIVE_STREAMS.dec()
            if not self._settled:  # the client went away: read on for the provider's count
                self.abandon()
            elif not (self._reading_on or self._let_go):
                self.opened.response.close()

    def abandon(self) -> None:
        """The client left: the upstream works on (and bills the operator) whether or not
        anyone listens, so its stream is read on in the background, within the output cap and
        the read timeout, and the call is charged what the provider reports."""
        if not self._settled:
            self._settled = self._reading_on = True
            self.detach(self._read_on())

    async def read_on(self) -> None:
        """The client left before the relay began: read the upstream on here (as `abandon`
        does in the background), then settle."""
        if not self._settled:
            self._settled = self._reading_on = True
            await self._read_on()

    async def _relay(self, send: Send) -> None:
        translator = self.translator
        while not translator.finished:
            data = await self._read_to_end(send)
            events = self._parser.feed(data) if data else self._parser.flush()
            if events:
                self._whole = None
            else:
                events = self._whole_answer(data)
            if not self._sent_any and len(self._head) < HEAD_BYTES:
                self._head += data[: HEAD_BYTES - len(self._head)]
            out, failure = self._translate(events)
            failure = failure or self._parser.too_large
            if out and (sent := b"".join(out)):  # (events written as nothing, e.g. hidden
                await self._send(send, sent)  # reasoning, are no byte: keep-alives go on)
            if failure is not None:
                raise failure
            if self._capped:
                return await self._cut(send)
            if not data:
                break
        tail = [self.encoder.chunk(c) for c in translator.finish()]
        if not translator.finished and not translator.counted_whole():
            raise self._incomplete()
        self.opened.response.let_go(END_GRACE_SEC)  # its end not waited for (nor its close)
        self._let_go = True
        usage = produced(self.call, self.translator, self.tally, True)
        self._settled = True  # from here the settlement commits even if we are cancelled
        charged = await self._commit(settlement(self.call, usage, "ok"))
        tail.extend(self.encoder.tail(usage, charged))
        await self._send(send, b"".join(tail))

    def _whole_answer(self, data: bytes) -> list[SSEEvent]:
        """While no event came the body is kept (within the body limit); at its end, a whole
        chat completion, Messages `message` or Responses `response` there (a server that
        answers a stream with one JSON answer: SGLang with tools, buffering proxies) is the
        stream it stands for."""
        whole, of_answer = self._whole, self._of_answer
        if whole is None or of_answer is None:
            return []
        if data:
            whole += data
            if len(whole) > self.opened.response.limits.max_body_bytes:
                self._whole = None
            return []
        self._whole = None
        return of_answer(whole)

    def _incomplete(self) -> UpstreamBroken:
        """The failure of a stream that ended before it was complete; one that was no stream at
        all (a JSON error body, a proxy's HTML page) says what came and what it said."""
        if self._sent_any or not self._head or looks_like_sse(self._head):
            return UpstreamBroken("the upstream stream ended before it was complete")
        kind = self.opened.response.header("content-type") or "no content type"
        said = self.call.adapter.error_message(200, bytes(self._head))
        return UpstreamBroken(f"the upstream answered the stream request with no stream "
                              f"({kind}): {mask_in(said, self.opened.key.secret)}")  # fmt: skip

    async def _cut(self, send: Send) -> None:
        """The output reached the reserved cap: the upstream is stopped and the client's
        stream ends as one that hit max_tokens (its open block completed as a stop would)."""
        self.opened.response.close()
        usage, self._settled = produced(self.call, self.translator, self.tally, False), True
        charged = await self._commit(settlement(self.call, usage, "ok", error_code="output_cap"))
        signed = [self.encoder.chunk(chunk) for chunk in self.translator.cut()]
        await self._send(send, b"".join([*signed, *self.encoder.cut(usage, charged)]))

    async def _commit(self, item: Settlement) -> int:
        """Settle a call whose client has (some of) the output; returns the charge."""
        write = partial(settle_steps, item=item)
        try:
            return await self.writes.submit(write) or 0
        except Exception:  # not settled (e.g. the database stayed locked): the client has the
            pass  # output, so once more (a batch after a failed one runs each write alone)
        try:
            return await self.writes.submit(write) or 0  # never on the loop: it may wait
        except Exception as exc:  # for locks
            log_unsettled(self.call, item, exc)
            raise

    def _translate(self, events: list[SSEEvent]) -> tuple[list[bytes], Exception | None]:
        """The encoded chunks of some events, up to the output cap; an error event stops
        there (what came before it in the same read is still relayed)."""
        out: list[bytes] = []
        try:
            for event in self.translator.until_finished(events):
                seen = self.translator.output_tokens_seen  # (a count of the event: its own)
                for chunk in self.translator.feed(event):
                    if self._count(chunk, seen):
                        return out, None
                    out.append(self.encoder.chunk(chunk))
        except Exception as exc:
            return out, exc
        return out, None

    def _count(self, chunk: dict[str, Any], seen: int) -> bool:
        """Count a chunk's output; whether it is past the reserved cap: the tally's low count,
        or the provider's running one `seen` before its event (a count riding on a piece counts
        it: Together's, DeepSeek's), reached it, so the output before it was all the cap allowed
        (the stream is cut there)."""
        limit = self.call.output_limit
        full = seen >= limit or self.tally.least_tokens >= limit
        if self.tally.add(chunk) and full:
            self._capped = True
        return self._capped

    async def _read_on(self) -> None:
        """After the client left: the rest of the upstream's stream, then the settlement; an
        upstream that produces no output for `read_timeout_sec` (silent, or only talking:
        comments, pings) is hung up on. Cancelled (a stop that ran out of time), it charges
        what was seen."""
        complete = False
        try:
            first_wait = min(self.read_timeout_sec, self._until_content_due())
            async with asyncio.timeout(first_wait) as quiet:
                complete = await self._consume(quiet)
        except asyncio.CancelledError:
            self.opened.response.close()
            settle(self._left(complete=False))
            raise
        except Exception as exc:  # the upstream failed or went silent: what was seen counts
            said = mask_tokens(mask_in(str(exc), self.opened.key.secret))  # as `failed` does
            log.info("stream %s ended after its client left: %s", self.call.request_id, said)
            if self._never_began():  # a held-back start that never began: free, as a 504 is
                self.opened.response.close()
                silent = UpstreamWentSilent("the upstream did not start its answer in time")
                await self._commit(failed(self.call, silent))  # counted there
                return
            count_unheard_failure(self.call, exc)
        self.opened.response.close()
        await self._commit(self._left(complete))

    async def _consume(self, quiet: asyncio.Timeout) -> bool:
        """Read the upstream to its end or the output cap, `quiet` moved on at each output;
        whether it ended normally."""
        translator = self.translator
        while not translator.finished:
            data, self.pending = self.pending or await self.opened.response.read_chunk(), b""
            pieces = self.tally.pieces
            events = self._parser.feed(data) if data else self._parser.flush()
            self._whole = None if events else self._whole  # (a JSON answer: its usage counts)
            for event in translator.until_finished(events or self._whole_answer(data)):
                seen = translator.output_tokens_seen
                for chunk in translator.feed(event):
                    if self._count(chunk, seen):
                        return False
            if self.tally.pieces > pieces:
                quiet.reschedule(asyncio.get_running_loop().time() + self.read_timeout_sec)
            if self._parser.too_large is not None:
                raise self._parser.too_large
            if not data:
                translator.finish()
                return translator.finished or translator.usage is not None
        return True

    def _left(self, complete: bool) -> Settlement:
        usage = produced(self.call, self.translator, self.tally, complete)
        return settlement(self.call, usage, "abandoned", error_code="client_closed")

    async def _read_to_end(self, send: Send) -> bytes:
        """The next upstream bytes; b"" also when the connection broke (or went silent past the
        read timeout) after the provider's final count (`counted_whole`): those bytes closed
        cleanly make a complete stream, and so they do cut there (before `[DONE]`)."""
        try:
            return await self._read(send)
        except (UpstreamBroken, UpstreamReadTimeout) as broken:
            if isinstance(broken, UpstreamTooLarge) or not self.translator.counted_whole():
                raise
            return b""

    async def _read(self, send: Send) -> bytes:
        """The next upstream bytes, sending keep-alive comments while the client got nothing
        for `keepalive_sec` (upstream bytes that relay nothing, such as its own comments, do
        not count); an upstream whose output has not begun by `content_by` went silent."""
        if self.pending:
            data, self.pending = self.pending, b""
            return data
        while True:
            due = self._until_content_due()
            wait = self._last_send + self.keepalive_sec - time.monotonic()
            if wait <= 0:
                await self._send(send, KEEPALIVE)
                continue
            waiting = time.perf_counter()
            try:
                async with asyncio.timeout(min(wait, due)):
                    return await self.opened.response.read_chunk()
            except TimeoutError:
                pass
            finally:  # the upstream's time, not the box's own (api/observe.py)
                self.call.upstream_sec += time.perf_counter() - waiting

    def _never_began(self) -> bool:
        """Whether this stream was handed on without content (stream_start) and none came."""
        return self.content_by is not None and not (self.tally.pieces or self.translator.began)

    def _until_content_due(self) -> float:
        """Seconds left for the output to begin (inf once it has, or with no such bound);
        raises UpstreamReadTimeout past it."""
        if self.content_by is None:
            return float("inf")
        if self.tally.pieces or self.translator.began:  # (a thinking block shown no text)
            self.content_by = None
            return float("inf")
        left = self.content_by - time.monotonic()
        if left <= 0:
            raise UpstreamReadTimeout("the upstream did not start its answer in time")
        return left

    async def _send(self, send: Send, data: bytes) -> None:
        sending = time.perf_counter()
        try:
            await send(data)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise ClientGone from exc
        finally:  # the client's time, not the box's own (api/observe.py)
            self.call.client_sec += time.perf_counter() - sending
        self._last_send = time.monotonic()
        self._sent_any = True

    async def _fail(self, send: Send, exc: Exception) -> None:
        """A failed stream: nothing charged (but what was counted of one the event limit ended
        once the client had some of it); an error event sent, or raised when it got no byte."""
        error = client_error(self.opened.without_key(exc))
        self.opened.response.close()
        if not self._settled:
            self._settled = True
            had = exc is self._parser.too_large and self.tally.pieces > 0  # output relayed
            counted = produced(self.call, self.translator, self.tally, False) if had else None
            item = failed(self.call, error, counted)
            try:
                await self.writes.submit(partial(settle_steps, item=item))
            except Exception as refused:  # the hold stays until a sweep or the next start
                log.error("could not release the hold of %s: %s", self.call.request_id, refused,
                          exc_info=traceback_of(refused))  # fmt: skip
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
