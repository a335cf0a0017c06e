"""How a call ends: the settlement to record, the usage to show, the error to report."""

from __future__ import annotations

import logging
import time
from functools import partial

from codelace_box import metrics
from codelace_box.crypto import mask_tokens
from codelace_box.db.batch import WriteBatch
from codelace_box.db.failures import database_unavailable, is_busy, is_unavailable
from codelace_box.errors import CodelaceError, UpstreamError, UpstreamOverloaded, UpstreamTimeout
from codelace_box.gateway.advisor import AdvisorCharge, advisor_charge
from codelace_box.gateway.charges import CacheTokens, Settlement
from codelace_box.gateway.client import (
    UpstreamBroken,
    UpstreamReadTimeout,
    UpstreamTooLarge,
    UpstreamUnreachable,
)
from codelace_box.gateway.metering import settle_steps
from codelace_box.gateway.request import ChatCall
from codelace_box.money import usd_json
from codelace_box.providers.base import JSON, UpstreamStreamError, Usage

log = logging.getLogger("codelace_box.gateway")


def settlement(
    call: ChatCall,
    usage: Usage | None,
    status: str,
    *,
    error_code: str | None = None,
    charge: bool = True,
) -> Settlement:
    """What to record for a call that ended with `status`."""
    route = call.route
    return Settlement(
        request_id=call.request_id,
        user_id=call.user_id,
        key_id=call.key_id,
        model=route.id,
        provider=route.provider.name,
        upstream_model=route.upstream_model,
        input_per_1m_nanos=route.input_per_1m_nanos,
        output_per_1m_nanos=route.output_per_1m_nanos,
        input_tokens=usage.input_tokens if usage else 0,
        output_tokens=usage.output_tokens if usage else 0,
        status=status,
        stream=call.stream,
        estimated=bool(usage and usage.estimated),
        error_code=error_code,
        duration_ms=int((time.monotonic() - call.started) * 1000),
        charge=charge,
        route=call.ingress,
        cache=cache_tokens(call, usage),
        container=call.adapter.container,
        advisor=advisor_part(call, usage),
    )


def advisor_part(call: ChatCall, usage: Usage | None) -> AdvisorCharge | None:
    """The advisor model's tokens of a call that consulted one, at its catalog prices (or
    dearer: gateway/advisor.py)."""
    if call.advisor is None:
        return None
    tokens = usage.advisor if usage is not None else None
    return advisor_charge(call.advisor, tokens, call.route, call.request_id)


def cache_tokens(call: ChatCall, usage: Usage | None) -> CacheTokens:
    """The prompt-cache part of a call's input, with the route's cache prices."""
    route = call.route
    cache = CacheTokens(
        read_per_1m_nanos=route.cache_read_per_1m_nanos,
        write_per_1m_nanos=route.cache_write_per_1m_nanos,
        write_1h_per_1m_nanos=route.cache_write_1h_per_1m_nanos,
    )
    if usage is not None:
        cache.read_tokens = usage.cache_read_tokens
        cache.write_tokens = usage.cache_write_tokens
        cache.write_1h_tokens = usage.cache_write_1h_tokens
        if cache.write_tokens and not cache.write_1h_tokens and call.adapter.hour_writes(call.body):
            cache.write_1h_tokens = cache.write_tokens  # unsplit, yet all asked to last an hour
    return cache


# The box's own trouble, not an upstream's (failures.database_unavailable, errors.OutOfResources):
# never counted or logged as a provider's error.
OWN_TROUBLE_CODES = frozenset({"database_busy", "database_unavailable", "out_of_resources"})


class UpstreamWentSilent(UpstreamTimeout):
    """A 504 after the provider took the request (gateway.read_timeout_sec passed): the user
    pays nothing, as for every failed call, but the provider may bill the operator for it."""


def failed(call: ChatCall, error: CodelaceError | None, usage: Usage | None = None) -> Settlement:
    """The settlement of a call that failed with `error` (None: a bug), charged only what an
    upstream reported (`usage`); the upstream's message is kept, masked, and logged."""
    code = error.code if error else "internal_error"
    item = settlement(call, usage, "error", error_code=code, charge=usage is not None)
    if error is not None:
        item.upstream_error = count_upstream_error(call, error)
    return item


def count_unheard_failure(call: ChatCall, exc: BaseException) -> None:
    """An upstream failure after the client left (a stream read on to meter it): counted in
    the upstream errors metric as any other, though no client heard of it (logged by the
    caller; its settlement is the abandoned call's, not `failed`)."""
    error = client_error(exc)
    if error is None and isinstance(exc, TimeoutError):  # read_on's quiet timer: silent
        error = UpstreamWentSilent("the upstream went silent")
    if error is not None and error.code not in OWN_TROUBLE_CODES:
        code = metrics.upstream_error_code(error.code)
        metrics.upstream_errors(call.route.provider.name, code).inc()


def count_retried_failure(call: ChatCall, exc: BaseException | None) -> None:
    """A failed upstream attempt (if any) that the next attempt hides from the client (another
    key answered, or the request was asked again changed): counted in the upstream errors
    metric all the same, by provider and code, as the provider did fail it; not logged (the
    call's own end is: `failed`)."""
    error = client_error(exc) if exc is not None else None
    if error is not None and error.code not in OWN_TROUBLE_CODES and not error.counted:
        metrics.upstream_errors(
            call.route.provider.name, metrics.upstream_error_code(error.code)
        ).inc()
        error.counted = True  # the answer after all (gateway/held_keys.py): not counted again


def count_upstream_error(call: ChatCall, error: CodelaceError) -> str | None:
    """Count and log a call the upstream failed (every route, count_tokens too): the upstream
    errors metric by provider and code, and a warning with the upstream's message, masked;
    returns that message (None for the box's own database trouble, not the upstream's)."""
    if error.code in OWN_TROUBLE_CODES:
        return None
    if not error.counted:  # (an earlier attempt's failure as the answer: counted with it)
        code = metrics.upstream_error_code(error.code)
        metrics.upstream_errors(call.route.provider.name, code).inc()
    message = mask_tokens(error.message)
    log.warning(
        "upstream error: request %s model %s provider %s: %d %s: %s",
        call.request_id,
        call.route.id,
        call.route.provider.name,
        error.status,
        error.code,
        message,
    )
    return message


def abandoned(call: ChatCall) -> Settlement:
    """A call the client left before anything billable came back: it costs nothing."""
    return settlement(call, None, "abandoned", error_code="client_closed", charge=False)


def client_error(exc: BaseException) -> CodelaceError | None:
    """What the client sees for a failure; None for a bug (rendered as a logged 500)."""
    if isinstance(exc, CodelaceError):
        return exc
    if isinstance(exc, UpstreamReadTimeout):
        return UpstreamWentSilent(str(exc))  # "the upstream did not answer in time"
    if isinstance(exc, UpstreamTooLarge):
        return UpstreamError(str(exc), code="upstream_too_large")
    if isinstance(exc, UpstreamUnreachable | UpstreamBroken):
        return UpstreamError(str(exc), code="upstream_error")
    if isinstance(exc, UpstreamStreamError):  # overloaded before any content, every key tried
        kind = UpstreamOverloaded if exc.code == "overloaded_error" else UpstreamError
        return kind(exc.message, code=exc.code)
    return _database_trouble(exc)


def _database_trouble(exc: BaseException) -> CodelaceError | None:
    """A database that is busy or cannot be written (a settlement on a full disk): the 503
    that says so, not a bug's 500."""
    if isinstance(exc, Exception) and (is_busy(exc) or is_unavailable(exc)):
        return database_unavailable(exc)
    return None


def cost_field(cost_nanos: int) -> JSON:
    """`{"cost_usd": ...}`, what every dialect adds to the usage it shows the client."""
    return {"cost_usd": usd_json(cost_nanos)}


def usage_body(usage: Usage, cost_nanos: int) -> JSON:
    """The client's `usage` object: the upstream's counts plus what the call cost."""
    body = usage.openai_usage()
    body["cost_usd"] = usd_json(cost_nanos)
    return body


def log_unsettled(call: ChatCall, item: Settlement, exc: BaseException) -> None:
    """A settlement the database refused after the upstream answered (a full disk, a lost
    session): the call is not charged, but the provider did the work and bills the operator.
    Like any other loss, it is named: the request, the model, the tokens, the cost. The call is
    marked `unsettled`: its hold is the sweep's, however long the call is still referred to."""
    call.unsettled = True
    cost = min(item.cost_nanos(), call.hold_nanos)
    if cost <= 0:
        return
    error = client_error(exc)
    why = error.message if error is not None else type(exc).__name__
    log.warning(
        "request %s: its settlement could not be written (%s): %s, %d input + %d output "
        "tokens, %d nano-USD not charged (the operator's loss)",
        *(item.request_id, why, item.model, item.input_tokens, item.output_tokens, cost),
    )


async def settled_or_left(writes: WriteBatch, call: ChatCall, item: Settlement) -> int | None:
    """A call's last write (its release, or its settlement) committed: what it charged. One the
    database refused marks the call `unsettled`: its hold is then the sweep's, even while the
    call is still referred to (the error that ended it keeps its frames in a reference cycle,
    which a serving box's garbage collector may leave for long: server.py)."""
    try:
        return await writes.submit(partial(settle_steps, item=item))
    except Exception:
        call.unsettled = True
        raise
