"""The chat completion pipeline of one server process: admit, call upstream, relay, settle.

`Gateway` holds the process's routing table and upstream client. `prepare()` validates,
routes, prices and reserves (402 before any upstream call). `complete()` answers a
non-streaming call; `open_stream()` returns a `StreamRelay` once the upstream accepted the
call, so every error before the first byte is still a plain JSON error with its status.
Every path settles exactly once, synchronously (no await can split it), including a client
that goes away: cancellation cannot interrupt code that does not await.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from codelace_box.gateway.client import UpstreamBroken, UpstreamClient
from codelace_box.gateway.metering import admit, settle
from codelace_box.gateway.outcome import client_error, settle_failure, settlement, usage_body
from codelace_box.gateway.providers.base import JSON
from codelace_box.gateway.relay import StreamRelay
from codelace_box.gateway.request import ChatCall, prepare_call
from codelace_box.gateway.routing import RouteTable
from codelace_box.gateway.upstream import open_upstream

DEFAULT_KEEPALIVE_SEC = 15.0


@dataclass(frozen=True)
class GatewaySettings:
    max_retries: int = 2
    keepalive_sec: float = DEFAULT_KEEPALIVE_SEC  # SSE comment while the upstream is silent


@dataclass(frozen=True)
class Completed:
    """A finished non-streaming call: the body to return and what it cost."""

    body: JSON
    cost_nanos: int


class Gateway:
    """The pipeline, with one process's routes and upstream client."""

    def __init__(
        self, routes: RouteTable, client: UpstreamClient, settings: GatewaySettings
    ) -> None:
        self.routes = routes
        self.client = client
        self.settings = settings

    def prepare(
        self, body: JSON, body_len: int, *, request_id: str, user_id: int, key_id: int
    ) -> ChatCall:
        """Validate, route, price and reserve the worst case (402 if it is not covered)."""
        call = prepare_call(
            self.routes, body, body_len, request_id=request_id, user_id=user_id, key_id=key_id
        )
        admit(call.user_id, call.request_id, call.hold_nanos)
        return call

    async def complete(self, call: ChatCall) -> Completed:
        """Run a non-streaming call that was prepared (and so reserved)."""
        settled = False
        try:
            opened = await open_upstream(self.client, self.routes, call, self.settings.max_retries)
            try:
                payload: Any = await opened.response.read_json()
            finally:
                opened.response.release()
            if not isinstance(payload, dict):
                raise UpstreamBroken("the upstream answered with something other than an object")
            body, usage = call.adapter.parse_response(payload, call.route.id)
            if usage.estimated and not usage.input_tokens:
                usage.input_tokens = call.input_estimate
            charged = settle(settlement(call, usage, "ok")) or 0
            settled = True
            body["usage"] = usage_body(usage, charged)
            return Completed(body, charged)
        except Exception as exc:
            error = client_error(exc)
            settle_failure(call, "error", error.code if error else "internal_error")
            settled = True
            if error is None:
                raise
            raise error from None
        finally:
            if not settled:  # cancelled: the client went away before an answer
                settle_failure(call, "abandoned", "client_closed")

    async def open_stream(self, call: ChatCall) -> StreamRelay:
        """Start a streaming call; errors before the upstream accepted it are raised here."""
        try:
            opened = await open_upstream(self.client, self.routes, call, self.settings.max_retries)
        except Exception as exc:
            error = client_error(exc)
            settle_failure(call, "error", error.code if error else "internal_error")
            if error is None:
                raise
            raise error from None
        except BaseException:
            settle_failure(call, "abandoned", "client_closed")
            raise
        return StreamRelay(call, opened, self.settings.keepalive_sec)
