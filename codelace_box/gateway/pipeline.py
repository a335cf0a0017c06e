"""The chat completion pipeline of one server process: admit, call upstream, relay, settle.

`Gateway` holds the process's routing table and upstream client. `complete()` reserves and
answers a non-streaming call; `open_stream()` reserves and returns a `StreamRelay` once the
upstream accepted the call, so every error before the first byte is a plain JSON error with
its status (`prepare()` does a chat body's first steps alone, 402 before any upstream call).
Every path settles exactly once, synchronously (no await can split it), including a client
that goes away: cancellation cannot interrupt code that does not await.

A call whose client leaves is not stopped: the upstream already works on it and bills the
operator, as OpenAI and OpenRouter bill theirs, so it finishes in the background (a stream is
read on, within its output cap and the read timeout) and is charged what the provider reports,
its usage row marked "abandoned" (`call.left`: no retry starts new work for nobody).
`drain()` lets those finish before a worker stops.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from functools import partial
from typing import Any

from codelace_box.catalog.keyprobe import KeyProber
from codelace_box.db.batch import WriteBatch
from codelace_box.errors import CodelaceError, InsufficientCredits
from codelace_box.gateway.admission import Admission, with_the_hold
from codelace_box.gateway.client import (
    OFF_LOOP_BYTES,
    UpstreamBroken,
    UpstreamClient,
    UpstreamTooLarge,
)
from codelace_box.gateway.dialects import answer_body
from codelace_box.gateway.holds import (
    OwnerWatch,
    claim_hold_owner_again,
    log_released,
    own_holds_older_than,
    release_holds_in,
)
from codelace_box.gateway.metering import Settlement, admit_steps, settle_steps
from codelace_box.gateway.outcome import (
    UpstreamWentSilent,
    abandoned,
    client_error,
    failed,
    log_unsettled,
    settled_or_left,
    settlement,
)
from codelace_box.gateway.oversized import OversizedAnswer, oversized
from codelace_box.gateway.relay import StreamRelay
from codelace_box.gateway.request import DEFAULT_CONTEXT_TOKENS, ChatCall, prepare_call
from codelace_box.gateway.responses import RESPONSES_ROUTE, in_responses_terms
from codelace_box.gateway.routing import RouteTable
from codelace_box.gateway.stream_start import open_stream_started
from codelace_box.gateway.streaming import StreamEnd, answer_payload
from codelace_box.gateway.upstream import open_upstream
from codelace_box.live_refs import LiveRefs
from codelace_box.providers.base import JSON, Usage

DEFAULT_KEEPALIVE_SEC = 15.0
LEAK_AGE_SEC = 60.0  # a hold this old whose call is gone was leaked (a call settles in one turn)
log = logging.getLogger("codelace_box.gateway")


@dataclass(frozen=True)
class GatewaySettings:
    max_retries: int = 2
    keepalive_sec: float = DEFAULT_KEEPALIVE_SEC  # SSE comment while the upstream is silent
    probe_timeout_sec: float = 10.0  # a probe confirming that the upstream refuses a key
    read_timeout_sec: float = 600.0  # gateway.read_timeout_sec: reading on after a client left
    default_context_tokens: int = DEFAULT_CONTEXT_TOKENS  # gateway.default_context_tokens
    default_rpm: int = 0  # limits.rpm: an account's requests per minute (0: unlimited)
    default_max_concurrent: int = 0  # limits.max_concurrent: its requests in flight


@dataclass  # not frozen: made for every call (providers/base.py UpstreamTarget)
class Completed:
    """A finished non-streaming call: the body to return and what it cost."""

    body: JSON
    cost_nanos: int
    large: bool = False  # its upstream answer was OFF_LOOP_BYTES or more: write it off the loop


@dataclass
class Fetched:
    """A non-streaming call's upstream answer, parsed, and its settlement queued: `settled`
    resolves to what was charged once the settlement committed."""

    body: JSON
    usage: Usage
    size: int  # of the upstream's answer, in bytes
    item: Settlement
    settled: asyncio.Future[int | None]


class Gateway:
    """The pipeline, with one process's routes, upstream client and write batch."""

    def __init__(
        self, routes: RouteTable, client: UpstreamClient, settings: GatewaySettings
    ) -> None:
        self.routes = routes
        self.client = client
        self.settings = settings
        self.writes = WriteBatch()
        self.prober = KeyProber(settings.probe_timeout_sec)
        self._background: set[asyncio.Future[Any]] = set()
        self._calls: LiveRefs[ChatCall] = LiveRefs()  # its calls that may still settle
        self._gone_owners = OwnerWatch()

    async def prepare(
        self, body: JSON, body_len: int, *, request_id: str, user_id: int, key_id: int
    ) -> ChatCall:
        """Validate, route, price and reserve the worst case (402 if it is not covered)."""
        call = prepare_call(
            self.routes, body, body_len, request_id=request_id, user_id=user_id, key_id=key_id,
            default_context_tokens=self.settings.default_context_tokens,
        )  # fmt: skip
        await self.reserve(call)
        return call

    async def reserve(self, call: ChatCall, limits: Admission | None = None) -> None:
        """Reserve a prepared call's worst case, whatever route the call came by, after the
        account limits (429) and the key cap (402); 402 if the balance does not cover it.
        `limits`: the account's (default: only the call's key cap)."""
        await self._reserved(call, self._admit(call, limits))

    def _admit(self, call: ChatCall, limits: Admission | None) -> asyncio.Future[None]:
        """The call's admission queued (the batch commits it at the end of the loop turn)."""
        self._calls.add(call.request_id, call)
        admit = partial(
            admit_steps, user_id=call.user_id, request_id=call.request_id,
            amount_nanos=call.hold_nanos, limits=limits or Admission(key_id=call.key_id),
        )  # fmt: skip
        return self.writes.submit(admit)

    async def _reserved(self, call: ChatCall, admitted: asyncio.Future[None]) -> None:
        """Once the admission committed: its refusal raised as the client knows it."""
        try:
            await admitted
        except InsufficientCredits as refused:  # "lower max_tokens": named as the client knows it
            told = with_the_hold(refused, call.asked())
            if call.ingress.startswith(RESPONSES_ROUTE):  # /v1/responses/compact too
                raise in_responses_terms(told) from None
            raise told from None
        except asyncio.CancelledError:  # the hold may still be taken: give it back after
            self.writes.submit_detached(partial(settle_steps, item=abandoned(call)))
            raise

    async def complete(self, call: ChatCall, limits: Admission | None = None) -> Completed:
        """Reserve (as `reserve`), run and settle a prepared non-streaming call; see the module
        doc for a client that leaves. The call runs as a task of its own, queued behind its
        admission's batch: on SQLite the batch commits in the next loop turn and the task,
        started in that same turn, finds it done and calls the upstream at once. It hands the
        handler, through `told`, the upstream's answer with its settlement queued (`Fetched`):
        the batch commits that first in the next turn, so the handler, woken in that same
        turn, answers at once. Two turns fewer at each end than a handler that awaits each."""
        admitted = self._admit(call, limits)
        loop = asyncio.get_running_loop()  # a Task named here: uvloop's create_task formats
        told: asyncio.Future[Fetched] = loop.create_future()  # a `Task-N` name (1,800 instr.)
        task = asyncio.Task(self._complete_to(call, admitted, told), loop=loop, name="call")
        try:  # cancelled with the handler (the client left): the task runs on
            fetched = await told
            settled = fetched.settled
            if not settled.done():  # PostgreSQL: the write thread commits it meanwhile
                await asyncio.wait((settled,))  # (never cancels it: the task awaits it too)
            if settled.cancelled() or settled.exception() is not None:
                await asyncio.shield(task)  # not settled: what the task raises, hold freed
        except asyncio.CancelledError:
            call.left = True
            self._background.add(task)
            task.add_done_callback(partial(self._background_done, call.request_id))
            raise
        charged = settled.result() or 0
        answer = answer_body(call, fetched.body, fetched.usage, charged)
        return Completed(answer, charged, fetched.size >= OFF_LOOP_BYTES)

    async def _complete_to(
        self, call: ChatCall, admitted: asyncio.Future[None], told: asyncio.Future[Fetched]
    ) -> None:
        """Once admitted, `_fetched`, told to the handler waiting on `told` as soon as the
        settlement is queued; then the settlement awaited, and a hold it could not settle
        freed. A client gone before the upstream call frees its hold (as `reserve` does);
        once the handler is gone, what it raises is the task's own (`tell_failure`)."""
        try:
            await self._reserved(call, admitted)
            if told.cancelled():  # the client left before the upstream was called
                self.writes.submit_detached(partial(settle_steps, item=abandoned(call)))
                return
            fetched = await self._fetched(call)
        except (asyncio.CancelledError, Exception) as exc:
            tell_failure(told, exc)
            return
        if not told.done():
            told.set_result(fetched)
        try:
            await fetched.settled
        except Exception as exc:  # not settled (e.g. the database stayed locked): no answer,
            log_unsettled(call, fetched.item, exc)  # so no charge; free the hold
            raise await self._release(call, exc) from None

    async def drain(self, timeout: float, window: float) -> None:
        """Before the worker stops: calls whose clients left finish and are charged; any still
        running after `timeout` seconds (what is left of the stop's `window`) is cancelled,
        which frees the hold of a call that produced nothing and charges a stream what was
        seen of it. A call its stop cut (its connection closed at the window's end) is among
        them once its handler saw the cancellation: a loop turn later."""
        await asyncio.sleep(0)
        if self._background:
            _, late = await asyncio.wait(set(self._background), timeout=timeout)
            for task in late:
                task.cancel()
            if late:
                _log_cut(len(late), window)
                await asyncio.wait(late)
        await self.writes.written()  # the releases those cancellations queued

    def _detach(self, request_id: str, work: Coroutine[Any, Any, None]) -> None:
        """Run work of a call whose client left; `drain()` waits for it."""
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(partial(self._background_done, request_id))

    def _background_done(self, request_id: str, task: asyncio.Future[Any]) -> None:
        self._background.discard(task)
        exc = None if task.cancelled() else task.exception()
        if exc is not None and client_error(exc) is None:  # a bug, not an upstream failure
            log.error("a call its client left failed", exc_info=exc)

    def sweep_holds(self, min_age_sec: float = LEAK_AGE_SEC, owner_grace_sec: float = 0.0) -> None:
        """Free credit reserved for nothing: the holds of processes that died (a worker that
        crashed while this one serves on; on PostgreSQL a box gone for `owner_grace_sec`, see
        OwnerWatch), and this process's own holds whose call is gone without settling (a
        settlement the database refused), instead of leaving them blocked until the next start.
        The server runs its reads on the database thread (`leftover_holds`), then frees here."""
        self.release_leftovers(*self.leftover_holds(min_age_sec, owner_grace_sec))

    def leftover_holds(
        self, min_age_sec: float = LEAK_AGE_SEC, owner_grace_sec: float = 0.0
    ) -> tuple[list[str], list[str]]:
        """The sweep's reads, on any one thread at a time: the owners gone for the grace, and
        the request ids of this process's own holds older than `min_age_sec`; first, this
        process claimed alive again on this thread's session if its claim was dropped."""
        claim_hold_owner_again()
        return self._gone_owners.long_gone(owner_grace_sec), own_holds_older_than(min_age_sec)

    def release_leftovers(self, owners: list[str], own_old: list[str]) -> None:
        """On the loop: free the holds of those owners, and of those own requests whose call is
        gone or left unsettled (its last write refused); a call still running keeps its hold."""
        leaked = [r for r in own_old if (c := self._calls.get(r)) is None or c.unsettled]
        if owners or leaked:
            what = ", ".join(owners + leaked)
            future = self.writes.submit(
                partial(release_holds_in, owners=owners, request_ids=leaked)
            )
            future.add_done_callback(partial(log_released, what))

    async def _fetched(self, call: ChatCall) -> Fetched:
        """The upstream's answer, its settlement queued (not yet committed: `settled`)."""
        try:
            body, usage, size = await self._fetch(call)
        except BaseException as exc:
            raise await self._release(call, exc) from None
        status = "abandoned" if call.left else "ok"
        item = settlement(call, usage, status)
        settled = self.writes.submit(partial(settle_steps, item=item))
        return Fetched(body, usage, size, item, settled)

    async def _fetch(self, call: ChatCall) -> tuple[JSON, Usage, int]:
        opened = await open_upstream(
            self.client, self.routes, call, self.settings.max_retries, self.prober
        )
        reading = time.perf_counter()
        try:
            raw = await opened.response.read_body(StreamEnd(opened.response.limits.max_event_bytes))
        except UpstreamTooLarge as exc:  # the provider did the work: its count is charged
            raise await oversized(call, opened.response, exc) from None
        finally:
            opened.response.release()
            call.upstream_sec += time.perf_counter() - reading
        payload = await answer_payload(call, raw, opened.response.limits.max_event_bytes)
        if not isinstance(payload, dict):
            raise UpstreamBroken("the upstream answered with something other than an object")
        try:
            body, usage = call.adapter.parse_response(payload, call.answer_model)
        except CodelaceError as exc:  # the upstream's own error, in a 200 answer
            raise opened.without_key(exc) from None
        except (AttributeError, TypeError, ValueError, KeyError, IndexError) as exc:
            log.warning("request %s: the upstream's answer is not in its API's shape (%s)",
                        call.request_id, type(exc).__name__)  # fmt: skip
            raise UpstreamBroken("the upstream's answer is not in its API's shape") from None
        return body, call.with_input(usage), len(raw)

    async def open_stream(self, call: ChatCall, limits: Admission | None = None) -> StreamRelay:
        """Reserve (as `reserve`) and start a streaming call, its errors raised here; its task
        runs behind the admission's batch (as `complete`'s) and tells the relay through `told`.
        A client gone before the upstream call gets its hold back; later, the upstream works on
        (billing the operator), so it is read on in the background and charged what it says."""
        admitted = self._admit(call, limits)
        loop = asyncio.get_running_loop()
        told: asyncio.Future[StreamRelay] = loop.create_future()  # (a Task named: as `complete`)
        task = asyncio.Task(self._open_stream_to(call, admitted, told), loop=loop, name="stream")
        try:
            return await told
        except asyncio.CancelledError:
            call.left = True
            told.cancel()  # (already, if the cancellation came through it)
            if told.cancelled() or told.exception() is not None:  # the task sees to it
                self._background.add(task)
                task.add_done_callback(partial(self._background_done, call.request_id))
            else:  # told the relay, then cancelled before it resumed: read on
                self._detach(call.request_id, told.result().read_on())
            raise

    async def _open_stream_to(
        self, call: ChatCall, admitted: asyncio.Future[None], told: asyncio.Future[StreamRelay]
    ) -> None:
        """Once admitted (a refusal told: `tell_failure`), the stream opened and its relay told;
        a client gone before the upstream call frees its hold, one gone after is read on here."""
        try:
            await self._reserved(call, admitted)
            if told.cancelled():  # the client left before the upstream was called
                self.writes.submit_detached(partial(settle_steps, item=abandoned(call)))
                return
            relay = await self._open_stream(call)  # a failure settled there
        except (asyncio.CancelledError, Exception) as exc:
            tell_failure(told, exc)
            return
        if told.cancelled():
            await relay.read_on()
        else:
            told.set_result(relay)

    async def _open_stream(self, call: ChatCall) -> StreamRelay:
        try:
            started = await open_stream_started(
                self.client, self.routes, call, self.settings.max_retries, self.prober,
                self.settings.read_timeout_sec, self.settings.keepalive_sec,
            )  # fmt: skip
        except BaseException as exc:
            raise await self._release(call, exc) from None
        relay = StreamRelay(
            call,
            started.opened,
            self.writes,
            keepalive_sec=min(self.settings.keepalive_sec, call.head_within),
            read_timeout_sec=self.settings.read_timeout_sec,
            detach=partial(self._detach, call.request_id),
        )
        relay.pending = started.prefix
        relay.content_by = started.content_by
        return relay

    async def _release(self, call: ChatCall, exc: BaseException) -> BaseException:
        """Free the hold of a call that produced nothing; returns what to raise."""
        if not isinstance(exc, Exception):  # cancelled: the client went away
            self.writes.submit_detached(partial(settle_steps, item=abandoned(call)))
            return exc
        error = client_error(exc)
        usage = exc.usage if isinstance(exc, OversizedAnswer) else None  # else it costs nothing
        if isinstance(error, UpstreamWentSilent):
            log.warning(
                "request %s: the upstream went silent past gateway.read_timeout_sec; a failed "
                "call costs the user nothing, but the provider may bill up to the hold of %d "
                "nano-USD: the operator's possible loss",
                call.request_id,
                call.hold_nanos,
            )
        charged = await settled_or_left(self.writes, call, failed(call, error, usage))
        if usage is not None and error is not None:  # the answer says what it cost
            error.cost_nanos = charged or 0
        return error if error is not None else exc


def tell_failure(told: asyncio.Future[Any], exc: BaseException) -> None:
    """A call task's failure told its handler; once that is gone, the task's own (logged by
    `_background_done` if a bug)."""
    if told.done():
        raise exc
    if isinstance(exc, asyncio.CancelledError):
        told.cancel()
    else:
        told.set_exception(exc)


def _log_cut(count: int, window: float) -> None:
    """The one line a stop writes about the calls it cut."""
    plural, verb, them = ("", "was", "it") if count == 1 else ("s", "were", "them")
    log.warning("%d call%s still running when the stop's %g s ran out %s cut and charged what "
                "the upstream sent of %s", count, plural, window, verb, them)  # fmt: skip
