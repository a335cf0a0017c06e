"""Calling the upstream: key rotation, retries before any byte reached the client, errors.

One call tries the provider's keys round robin. Connect errors, 429, 5xx (Anthropic's 529
included) and 402 (the operator's account at the provider cannot pay; another key may belong to
another account) move on to the next key, at most `max_retries` times. A key answering 401/403 is
flagged and leaves the rotation; that attempt does not use up a retry (the rotation shrinks).
What the client finally sees: the upstream's own 4xx status and message, 429 with Retry-After,
502 for 5xx and unreachable upstreams, 503 when no key is left or the provider wants paying
(never 402, which the SPEC keeps for the user's own balance), 504 for timeouts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from codelace_box.crypto import mask_in
from codelace_box.errors import (
    CodelaceError,
    RateLimited,
    ServiceUnavailable,
    UpstreamError,
    UpstreamTimeout,
)
from codelace_box.gateway.client import (
    MAX_ERROR_BODY,
    UpstreamClient,
    UpstreamConnectTimeout,
    UpstreamReadTimeout,
    UpstreamResponse,
    UpstreamUnreachable,
)
from codelace_box.gateway.request import ChatCall
from codelace_box.gateway.routing import KeySlot, RouteTable

log = logging.getLogger("codelace_box.gateway")


class UpstreamRejected(CodelaceError):
    """The upstream refused the request (4xx): relayed with its status and message."""

    error_type = "invalid_request_error"
    default_code = "upstream_rejected"

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message, code=f"upstream_{status}")
        self.status = status


@dataclass
class Opened:
    """A 200 answer from the upstream and the key that earned it."""

    response: UpstreamResponse
    key: KeySlot


def _retry_after(response: UpstreamResponse) -> int:
    raw = response.header("retry-after") or ""
    try:
        return max(1, int(float(raw)))
    except ValueError:
        return 1


class ProviderKeyRejected(ServiceUnavailable):
    """The upstream refused the operator's key (401/403): 503 to the client, key flagged."""

    def __init__(self, provider: str, status: int, message: str) -> None:
        super().__init__(
            f"{provider} refused the operator's key (HTTP {status}): {message}",
            code="provider_key_rejected",
        )
        self.key_failure_reason = f"HTTP {status}: {message}"


class ProviderOutOfCredit(ServiceUnavailable):
    """The provider wants paying by the operator (402, or the adapter's own sign of it): 503 to
    the client, never the 402 that means the user's balance."""

    def __init__(self, provider: str, status: int, message: str) -> None:
        super().__init__(
            f"{provider} refused the call: the operator's account there is out of credit "
            f"(HTTP {status}): {message}",
            code="provider_out_of_credit",
        )


async def _failure(call: ChatCall, response: UpstreamResponse, key: KeySlot) -> CodelaceError:
    """The error to report for a non-200 upstream answer (its body is read and closed); the
    key, should the upstream echo it, is masked out of the message."""
    try:
        payload = await response.read(MAX_ERROR_BODY)
    except Exception:  # the status alone still tells what happened
        payload = b""
    finally:
        response.close()
    status = response.status
    message = mask_in(call.adapter.error_message(status, payload), key.secret)
    name = call.route.provider.name
    if status == 429:
        return RateLimited(f"{name} is rate limiting: {message}", _retry_after(response))
    if status >= 500:
        return UpstreamError(f"{name} failed (HTTP {status}): {message}", code="upstream_error")
    if status in (401, 403):
        return ProviderKeyRejected(name, status, message)
    if call.adapter.wants_payment(status, message):
        return ProviderOutOfCredit(name, status, message)
    return UpstreamRejected(status, message)


async def open_upstream(
    client: UpstreamClient, routes: RouteTable, call: ChatCall, max_retries: int
) -> Opened:
    """POST the call upstream until a 200 answer, or raise the error the client should see."""
    retries_left = max_retries
    last: CodelaceError | None = None
    while True:
        key = routes.next_key(call.route.provider.id)
        if key is None:
            raise last or ServiceUnavailable(
                f"{call.route.provider.name} has no working key", code="provider_unavailable"
            )
        request = call.adapter.build_request(
            call.body,
            upstream_model=call.route.upstream_model,
            api_key=key.secret,
            base_url=call.route.provider.base_url,
            stream=call.stream,
            default_max_tokens=call.output_cap,
        )
        try:
            response = await client.send(request)
        except UpstreamConnectTimeout as exc:
            last = UpstreamTimeout(f"{call.route.provider.name}: {exc}", code="upstream_timeout")
        except UpstreamUnreachable as exc:
            last = UpstreamError(f"{call.route.provider.name}: {exc}", code="upstream_unreachable")
        except UpstreamReadTimeout as exc:
            raise UpstreamTimeout(f"{call.route.provider.name}: {exc}") from None
        else:
            if response.status == 200:
                return Opened(response, key)
            last = await _failure(call, response, key)
            if isinstance(last, ProviderKeyRejected):
                routes.mark_failing(key, last.key_failure_reason)
                continue
            if isinstance(last, ProviderOutOfCredit):
                log.warning(
                    "%s key %d: the provider wants paying (HTTP %d)",
                    *(call.route.provider.name, key.id, response.status),
                )
            elif response.status != 429 and response.status < 500:
                raise last
        if retries_left <= 0:
            raise last
        retries_left -= 1
