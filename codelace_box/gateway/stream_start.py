"""The start of a stream: an error event before anything was relayed is that error unstreamed.

An upstream may accept a streamed call (200) and then send an error as its first event
(Anthropic's `event: error`, overloaded_error, rate_limit_error, ..., before the first content
block; OpenRouter's, vLLM's and proxies' `{"error": {...}}` chunk): the client has nothing yet,
so the box answers it as it answers the same error in an error answer (gateway/upstream.py, by
the status the event stands for: providers/error_events.py; a native Responses stream's
`response.failed` or `error` first event too): a rate limit, an overload or a server error goes
to the next key, then is a 429 (Retry-After), 503 or 502 (a key that answered a rate limit or
out-of-credit is not asked again by the call, as a refused key); a refused request is the 400
with the upstream's words; all free. `open_stream_started` reads the first event of an
OpenAI-compatible upstream, and the first events of an Anthropic upstream until content begins
(or the stream ends), and hands the bytes it read to the relay, which relays them as if they had
just arrived. It holds the answer back for the keep-alive interval at most (`hold_sec`, counted
from the request, every attempt's hold in it: as the relay's keep-alive): a long prompt's
prefill sends message_start and then only pings (a compatible server nothing, or comments), and
a client left without a byte that long gives up (Claude Code aborts a stream silent for its idle
timeout and warns of a slow first byte after 30 s; a proxy in front of the box cuts a response
with no byte for its read timeout, often 60 s). Past it the stream starts (message_start and the
pings relayed, keep-alive comments after), and an error event comes as an error event. Content
that does not begin within `gateway.read_timeout_sec` (an upstream that only pings) is an
upstream gone silent: a 504 while the answer is still held back, an error event once the stream
started (the relay's `content_by`); either way free. A translated compaction's stream (Codex
streams it) is read to its content on any provider: an error event before content saying it is
too long (a proxy's, where the provider would answer 400) asks it again shorter
(gateway/compaction_retry.py)."""

from __future__ import annotations

import asyncio
import json
import math
import time
from dataclasses import dataclass

from codelace_box.catalog.keyprobe import KeyProber
from codelace_box.errors import CodelaceError
from codelace_box.gateway.client import UpstreamClient, UpstreamReadTimeout, UpstreamTooLarge
from codelace_box.gateway.compaction_retry import (
    translated_compaction,
    trim_compaction_refused_in_stream,
)
from codelace_box.gateway.held_keys import no_key_left, retries_spent
from codelace_box.gateway.outcome import count_retried_failure
from codelace_box.gateway.request import ChatCall
from codelace_box.gateway.retry_after import sooner
from codelace_box.gateway.routing import RouteTable
from codelace_box.gateway.streaming import SSEParser
from codelace_box.gateway.upstream import Opened, failure_of, judge_failure, open_upstream
from codelace_box.jsonwire import NOT_JSON, loads
from codelace_box.providers.base import SSEEvent, UpstreamStreamError, is_blank
from codelace_box.providers.error_events import error_answer, error_event_status

# Events that mean the upstream is producing (or has finished): past them, no retry.
_STARTED = frozenset(
    {"content_block_start", "content_block_delta", "message_delta", "message_stop", "chunk"}
)


@dataclass
class Started:
    """An upstream stream past its start (or held back as long as it may be), the bytes
    already read from it, and when content must have begun (monotonic; None: it has)."""

    opened: Opened
    prefix: bytes
    content_by: float | None = None


def _kind(event: SSEEvent) -> str | None:
    try:
        data = loads(event.data)
    except NOT_JSON:
        return event.event
    if not isinstance(data, dict):
        return event.event
    if data.get("object") == "error" or event.event == "error":  # vLLM's, llama.cpp's (their
        return "error"  # `type` names the error's class)
    kind = data.get("type")
    if isinstance(kind, str):  # (a native Responses stream's failure: error_events.py)
        return "error" if kind == "response.failed" else kind
    if data.get("error"):  # an OpenAI-compatible stream's
        return "error"
    return "chunk" if "choices" in data else event.event


def _error_of(event: SSEEvent) -> UpstreamStreamError:
    try:
        data = json.loads(event.data)
        itself = data.get("object") == "error" or event.event == "error"
        error = data.get("error") or (data if itself else {})
    except (*NOT_JSON, AttributeError):
        error = {}
    error = error if isinstance(error, dict) else {"message": str(error)}
    kind = str(error.get("type") or "upstream_error")
    message = str(error.get("message") or "error")
    return UpstreamStreamError(f"Anthropic stream error ({kind}): {message}", code=kind)


async def _read_start(
    opened: Opened, hold_sec: float, wait_sec: float, first: bool
) -> tuple[bytes, SSEEvent | None, bool]:
    """Bytes up to the first content event (`first`: the first event) or the end, or the error
    event before it, and whether it came. An upstream that talks (pings) but starts no content
    within `wait_sec` has gone silent (UpstreamReadTimeout); one still without content after
    `hold_sec` (if shorter) is handed on as it is; and one that sends more than an answer may
    be before content is too large: none is waited on or buffered for ever."""
    read = bytearray()
    try:
        async with asyncio.timeout(min(hold_sec, wait_sec)):
            error = await _read_until_content(opened, read, first)
            return bytes(read), error, True
    except TimeoutError:
        if hold_sec >= wait_sec:
            raise UpstreamReadTimeout("the upstream did not start its answer in time") from None
    return bytes(read), None, False


async def _read_until_content(opened: Opened, read: bytearray, first: bool) -> SSEEvent | None:
    """Read into `read` up to the first content event (None; `first`: the first event of any
    kind but a blank one: providers/base.py is_blank) or an error event before it."""
    limits = opened.response.limits
    parser = SSEParser(limits.max_event_bytes)
    while True:
        data = await opened.response.read_chunk()
        read += data
        for event in parser.feed(data) if data else parser.flush():
            if is_blank(event):  # no event: waited past, as comments are
                continue
            kind = _kind(event)
            if kind == "error":
                return event
            if first or kind in _STARTED:
                return None
        if not data:
            return None
        if parser.too_large is not None:
            raise parser.too_large
        if len(read) > limits.max_body_bytes:
            raise UpstreamTooLarge(
                "the upstream sent more than gateway.max_upstream_body_bytes before its answer"
            )


async def open_stream_started(
    client: UpstreamClient,
    routes: RouteTable,
    call: ChatCall,
    max_retries: int,
    prober: KeyProber,
    read_timeout_sec: float,
    hold_sec: float,
) -> Started:
    """Open the call's stream upstream past its first event (an Anthropic one's, a translated
    compaction's: past its start), or `hold_sec`; an error event before it is judged as that
    error unstreamed (the next key, at most `max_retries` times in all, or the refusal), one
    saying a translated compaction is too long asks it again shorter (see the module doc)."""
    retries_left = max_retries
    tried: set[int] = set()  # the keys tried: a retry goes to another, if there is one
    anthropic = call.route.provider.kind == "anthropic"
    earlier: CodelaceError | None = None  # the last error event's: its rate limit's wait counts
    while True:
        opened = await _open(client, routes, call, retries_left, prober, tried, earlier)
        retries_left = opened.retries_left  # those spent opening it are spent
        earlier = opened.failed or earlier  # the latest failure (its wait cut: _open)
        whole = anthropic or translated_compaction(call)  # its start; else its first event
        reading, content_by = time.perf_counter(), time.monotonic() + read_timeout_sec
        # the call's hold, from the request: shorter for a client that gives up sooner
        held = call.started + min(hold_sec, call.head_within) - time.monotonic()
        try:
            prefix, event, began = await _read_start(
                opened, held, read_timeout_sec if whole else math.inf, first=not whole
            )
        except BaseException:
            opened.response.close()
            raise
        finally:  # the wait for its first token is the upstream's time, not the box's own
            call.upstream_sec += time.perf_counter() - reading
        if event is None:
            return Started(opened, prefix, content_by if whole and not began else None)
        opened.response.close()
        retries_left, earlier = await _after_error_event(
            prober, routes, call, opened, event, retries_left, earlier
        )


async def _open(
    client: UpstreamClient,
    routes: RouteTable,
    call: ChatCall,
    retries_left: int,
    prober: KeyProber,
    tried: set[int],
    earlier: CodelaceError | None,
) -> Opened:
    """open_upstream; a rate limit it ends with (raised, or the last failure before its 200)
    keeps the shorter wait of an earlier error event's rate limit (every key limited: the
    client comes back when the first is free again)."""
    try:
        opened = await open_upstream(client, routes, call, retries_left, prober, tried)
    except CodelaceError as exc:
        sooner(earlier, exc)
        raise
    if opened.failed is not None:
        sooner(earlier, opened.failed)
    return opened


async def _after_error_event(
    prober: KeyProber,
    routes: RouteTable,
    call: ChatCall,
    opened: Opened,
    event: SSEEvent,
    retries_left: int,
    earlier: CodelaceError | None,
) -> tuple[int, CodelaceError | None]:
    """The retries left for the next attempt after an error event before the stream's start
    (one that is no retry costs none) and the error it stands for (a rate limit's wait cut to
    an `earlier` one's: sooner), or that error, raised: when no retry is left, or the client
    left (no new work for nobody). A failure the next attempt hides is counted all the same
    (the upstream errors metric)."""
    event = SSEEvent(error_answer(event.data), event.event)  # a Responses one as the others
    refused = _error_of(event)
    if not call.left and trim_compaction_refused_in_stream(call, refused):
        count_retried_failure(call, refused)
        return retries_left, earlier  # the request changed: the next attempt is no retry
    error, free = await _judged_event(prober, routes, call, opened, event)
    error = sooner(earlier, error)
    if free and not call.left:  # the rotation shrank, or the request changed: no retry
        count_retried_failure(call, error)
        return retries_left, error
    if _no_key_left(call):  # every key's answer given: a limited key's first (no_key_left)
        raise no_key_left(call, error)
    if retries_left <= 0 or call.left:
        raise retries_spent(call, error)
    count_retried_failure(call, error)
    return retries_left - 1, error


def _no_key_left(call: ChatCall) -> bool:
    """Whether every key of the call's provider refused it, answered a rate limit or wants
    paying (`refused_keys`): the next attempt would find none, so this error is the answer."""
    return call.refused_keys.issuperset(key.id for key in call.route.provider.keys)


async def _judged_event(
    prober: KeyProber, routes: RouteTable, call: ChatCall, opened: Opened, event: SSEEvent
) -> tuple[CodelaceError, bool]:
    """The error an error event before the stream's start stands for (providers/
    error_events.py), judged as that error in an error answer is (gateway/upstream.py), and
    whether the next attempt is free; raised when another key would not do better."""
    status = error_event_status(event.data)
    error = failure_of(call, opened.response, status, event.data.encode(), opened.key)
    return error, await judge_failure(prober, routes, call, opened.key, error, status)
