"""/v1/chat/completions: the OpenAI-compatible entry point, a thin shell over the gateway.

Also the per-worker start and stop of the gateway (routing table and upstream client), which
server.py runs as startup/shutdown hooks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import time
from collections.abc import Mapping
from functools import partial
from typing import Protocol

from sanic import Request, Sanic
from sanic.response import HTTPResponse

from codelace_box.accounts.allowed_models import check_model_allowed, check_no_other_models
from codelace_box.accounts.keys import AuthContext
from codelace_box.accounts.limits import effective
from codelace_box.api.blueprint import Blueprint
from codelace_box.api.common import (
    COST_HEADER,
    BoxResponse,
    cost_header,
    json_body,
    json_response,
    large_json_response,
    require_auth,
)
from codelace_box.api.observe import finish_request, note_asked_model
from codelace_box.catalog.keyprobe import reprobe_flagged
from codelace_box.config import Config
from codelace_box.db.failing import FailureLog
from codelace_box.db.lead import Lead, lead_file
from codelace_box.db.offload import again_if_dropped, run_in_db_thread
from codelace_box.errors import CodelaceError
from codelace_box.gateway.admission import Admission
from codelace_box.gateway.body_work import OFF_LOOP_BODY_BYTES, off_loop
from codelace_box.gateway.client import UpstreamClient, UpstreamLimits
from codelace_box.gateway.containers import refuse_foreign_container
from codelace_box.gateway.holds import claim_hold_owner, hold_clock
from codelace_box.gateway.pipeline import DEFAULT_KEEPALIVE_SEC, Gateway, GatewaySettings
from codelace_box.gateway.refreshed_routes import route_table
from codelace_box.gateway.relay import STREAM_HEADERS
from codelace_box.gateway.request import MESSAGES_ROUTE, ChatCall, prepare_call
from codelace_box.gateway.routing import ProviderUnavailable, RouteTable
from codelace_box.providers.base import JSON

bp = Blueprint("inference")
log = logging.getLogger("codelace_box.gateway")
KEEPALIVE_ENV = "CODELACE_SSE_KEEPALIVE_SEC"  # internal knob for tests; not a config key
HOLD_SWEEP_ENV = "CODELACE_HOLD_SWEEP_SEC"  # internal knob for tests; not a config key
HOLD_SWEEP_SEC = 30.0
PROBE_READ_SEC = 10.0  # a key probe's time to answer, beyond the connect timeout
KEY_PROBE_ROLE = "keyprobe"  # the lead among boxes on one PostgreSQL database
SSE_TYPE = "text/event-stream; charset=utf-8"
# the read timeout the openai and anthropic SDKs declare, in seconds: the Python ones send the
# first (the second may be "NOT_GIVEN" there), the openai npm SDK the second (its whole timeout)
SDK_TIMEOUT_HEADERS = ("x-stainless-read-timeout", "x-stainless-timeout")


@bp.post("/v1/chat/completions")
async def chat_completions(request: Request) -> HTTPResponse | None:
    """OpenAI Chat Completions, streaming or not, metered against the caller's balance."""
    return await run_call(request, await require_auth(request), prepare_call)


class PrepareCall(Protocol):
    """A dialect's ingress adapter: its body checked, routed and priced into the one call the
    pipeline reserves, runs and settles (gateway/request.py, messages.py, responses.py,
    embeddings.py)."""

    def __call__(
        self,
        routes: RouteTable,
        body: JSON,
        body_len: int,
        *,
        request_id: str,
        user_id: int,
        key_id: int,
        default_context_tokens: int,
    ) -> ChatCall: ...


async def run_call(
    request: Request, auth: AuthContext, prepare: PrepareCall
) -> HTTPResponse | None:
    """What every inference route does once it knows the caller (401, 403 disabled): parse
    the body, let the dialect's adapter prepare the call (404 model), check the key's model
    allow-list (403), reserve its worst case under the account limits (429), the key cap and
    the balance (402), then answer."""
    gateway: Gateway = request.app.ctx.gateway
    large = len(request.body) >= OFF_LOOP_BODY_BYTES  # its work on a thread (body_work.py)
    body = await off_loop(json_body, request, between_turns=True) if large else json_body(request)
    try:  # a disabled provider's model: the allow-list's 403 first (as count_tokens.py's)
        if large:
            call = await prepared_off_loop(prepare, gateway, body, request, auth)
        else:
            call = prepare(
                gateway.routes, body, len(request.body), request_id=request.ctx.request_id,
                user_id=auth.user_id, key_id=auth.key_id,
                default_context_tokens=gateway.settings.default_context_tokens,
            )  # fmt: skip
    except ProviderUnavailable as unavailable:  # 403, not the 503 of a disabled provider
        request.ctx.model = unavailable.model_id  # the access line's, for either refusal
        check_model_allowed(auth.allowed_models, unavailable.model_id)
        raise
    except CodelaceError:  # a 404 model, a 400 of the body: the access line names its model
        note_asked_model(request, body)
        raise
    # for the access line and the metrics (api/observe.py): a refusal from here on (403, 429,
    # 402) names its model as a call's line does
    request.ctx.call = call
    check_model_allowed(auth.allowed_models, call.route.id)
    if call.advisor is not None:  # a model the call consults: the key must be allowed it too
        check_model_allowed(auth.allowed_models, call.advisor.id)
    if large and auth.allowed_models is not None:  # (a walk of its tools)
        await off_loop(check_no_other_models, call.body, auth.allowed_models)
    else:
        check_no_other_models(call.body, auth.allowed_models)
    if "container" in call.body and call.ingress == MESSAGES_ROUTE:  # (else nothing to look up)
        await refuse_foreign_container(call.body, auth.user_id)
    return await answer(request, gateway, call, admission(gateway, auth))


async def prepared_off_loop(
    prepare: PrepareCall, gateway: Gateway, body: JSON, request: Request, auth: AuthContext
) -> ChatCall:
    """The dialect's call of a large body (`prepare`), prepared on a body thread with the
    catalog as the loop loaded it (the thread reads no database); its translation for the
    upstream will be written on one too."""
    call = await off_loop(
        prepare,
        gateway.routes.as_loaded(),
        body,
        len(request.body),
        request_id=request.ctx.request_id,
        user_id=auth.user_id,
        key_id=auth.key_id,
        default_context_tokens=gateway.settings.default_context_tokens,
    )
    call.off_loop = True
    return call


def admission(gateway: Gateway, auth: AuthContext) -> Admission:
    """The limits a call of this caller is admitted under."""
    settings = gateway.settings
    return Admission(
        key_id=auth.key_id,
        rpm=effective(auth.rpm, settings.default_rpm),
        max_concurrent=effective(auth.max_concurrent, settings.default_max_concurrent),
        key_budgeted=auth.key_budgeted,
    )


async def answer(
    request: Request, gateway: Gateway, call: ChatCall, limits: Admission
) -> HTTPResponse | None:
    """Reserve and run a call: a JSON answer with its cost header, or the relayed stream
    (every inference route answers this way, each in its own dialect)."""
    if not call.stream:  # reserved inside (the upstream called in the admission's turn)
        done = await gateway.complete(call, limits)
        headers = {COST_HEADER: cost_header(done.cost_nanos)}
        if done.large:  # written off the loop
            return await large_json_response(done.body, headers)
        return json_response(done.body, headers=headers)
    call.head_within = head_within(request.headers)
    relay = await gateway.open_stream(call, limits)  # reserved inside, as complete()
    stream = LazyStream(request)
    request.ctx.streaming = True  # its access line and metrics: when it ends, below
    try:
        await relay.run(stream.send)  # a failure before the first byte: raised, a JSON error
        if stream.response is not None:
            with contextlib.suppress(Exception):
                await stream.response.eof()
    finally:
        if stream.response is not None:
            finish_request(request, stream.response)
    return None


def head_within(headers: Mapping[str, str]) -> float:
    """How soon a stream's head must go out (seconds from the request): half the read timeout
    the client's SDK declares (the openai and anthropic SDKs do), which would otherwise give up
    on a held-back stream, ask again and pay again; no limit when none is declared."""
    for name in SDK_TIMEOUT_HEADERS:
        try:
            seconds = float(headers.get(name) or "inf")
        except ValueError:  # "NOT_GIVEN", or nothing usable
            continue
        if 0 < seconds < math.inf:  # a second at least: keep-alive comments come as often
            return max(seconds / 2, 1.0)
    return math.inf


class LazyStream:
    """The SSE response, started with its first bytes: until then a failure can still be a
    plain JSON error with its status (e.g. an upstream whose first event is too long)."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.response: HTTPResponse | None = None

    async def send(self, data: bytes) -> None:
        """Send the headers first if they are not out yet, then `data`."""
        if self.response is None:
            started = BoxResponse(headers=STREAM_HEADERS, content_type=SSE_TYPE)
            self.response = await self.request.respond(started)
        await self.response.send(data)


async def start_gateway(app: Sanic) -> None:
    """Per worker: the routing table (on PostgreSQL its reload task) and the pooled upstream
    client."""
    config: Config = app.ctx.config
    gw = config.gateway
    limits = UpstreamLimits(gw.max_upstream_body_bytes, gw.max_sse_event_bytes)
    client = UpstreamClient(gw.connect_timeout_sec, gw.read_timeout_sec, limits)
    await client.start()
    settings = GatewaySettings(
        max_retries=config.gateway.max_retries,
        keepalive_sec=float(os.environ.get(KEEPALIVE_ENV) or DEFAULT_KEEPALIVE_SEC),
        probe_timeout_sec=config.gateway.connect_timeout_sec + PROBE_READ_SEC,
        read_timeout_sec=config.gateway.read_timeout_sec,
        default_context_tokens=config.gateway.default_context_tokens,
        default_rpm=config.limits.rpm,
        default_max_concurrent=config.limits.max_concurrent,
    )
    claim_hold_owner()  # alive for the other boxes on a shared database
    hold_clock()  # counting from now: a leap before the first sweep is one
    routes = route_table(app.ctx.secret_key)
    await routes.start()  # PostgreSQL: the catalog is reloaded off the loop from now on
    app.ctx.gateway = gateway = Gateway(routes, client, settings)
    interval = float(os.environ.get(HOLD_SWEEP_ENV) or HOLD_SWEEP_SEC)
    loop = asyncio.get_running_loop()
    app.ctx.hold_sweep = loop.create_task(sweep_holds_forever(gateway, interval))
    lead = Lead(lead_file(config.database, "keyprobe"), KEY_PROBE_ROLE)
    app.ctx.key_probe = loop.create_task(
        probe_flagged_forever(gateway, app.ctx.secret_key, config.gateway.key_probe_sec, lead)
    )


async def sweep_holds_forever(gateway: Gateway, interval: float) -> None:
    """Per worker, every `interval` s: free holds reserved for nothing (Gateway.sweep_holds),
    those of another process once it was gone for two intervals; and so touch the database:
    a session it dropped is opened again, and this process claimed alive again on it if the
    session holding its claim was dropped, within one interval.
    Its reads run on the database thread: a database host that stops answering holds them
    there (up to its timeouts, db/postgres.py NETWORK_DEFAULTS), never the event loop."""
    failures = FailureLog(log, "the sweep of leftover holds")
    while True:
        await asyncio.sleep(interval)
        try:  # the reads may run twice; what they found is freed in one transaction
            find = partial(gateway.leftover_holds, owner_grace_sec=2 * interval)
            gateway.release_leftovers(*await run_in_db_thread(again_if_dropped, find))
        except Exception as exc:  # a failed sweep is retried at the next tick
            failures.failed(exc)
        else:
            failures.worked()


async def probe_flagged_forever(
    gateway: Gateway, secret_key: str, interval: float, lead: Lead
) -> None:
    """Every `interval` s, in the one worker (and box) that leads it (each worker's probes
    had the provider see a refused key once per worker a period): keys flagged as failing
    whose probe works return (to this worker's rotation at once; the others' within their
    routes' refresh)."""
    failures = FailureLog(log, "probing the flagged provider keys")
    try:
        while True:
            await asyncio.sleep(interval)
            try:
                if not await lead.held():
                    failures.worked()
                    continue
                if await reprobe_flagged(secret_key, gateway.settings.probe_timeout_sec):
                    gateway.routes.invalidate()
            except Exception as exc:  # retried at the next tick
                failures.failed(exc)
            else:
                failures.worked()
    finally:
        lead.release()


def stop_time_left(app: Sanic) -> float:
    """What is left of the stop's window (server.py STOP_WINDOW_SEC), which the requests in
    flight used first: the calls whose clients left finish within the same window."""
    window = float(app.config.GRACEFUL_SHUTDOWN_TIMEOUT)
    ends_at: float | None = getattr(app.ctx, "stop_ends_at", None)
    return window if ends_at is None else max(0.0, ends_at - time.monotonic())


async def stop_gateway(app: Sanic) -> None:
    """Per worker: finish the calls whose clients left, then close the upstream connections."""
    for name in ("hold_sweep", "key_probe"):
        task: asyncio.Task[None] | None = getattr(app.ctx, name, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    gateway: Gateway | None = getattr(app.ctx, "gateway", None)
    if gateway is not None:
        await gateway.drain(stop_time_left(app), app.config.GRACEFUL_SHUTDOWN_TIMEOUT)
        await gateway.routes.stop()
        await gateway.client.close()
