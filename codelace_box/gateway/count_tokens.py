"""count_tokens of the Messages API: asked of an `anthropic` upstream, estimated otherwise
(also when an Anthropic-compatible upstream has no count_tokens route: its 404, or a proxy's
404 page).

Never charged and never held: the call goes through the same key rotation and retries as a
completion (gateway/upstream.py), but no hold is taken and no usage row is written. A count an
upstream is asked for spends the operator's provider key, so it counts in the account's
requests per minute (a 429 past them); an estimate calls no one and is not counted. A billed
field the provider does not allow is refused as on /v1/messages (billed_fields.py), and so is,
toward an `openai` provider, a body its call's translation would refuse, in the same words
(messages_openai.chat_body: a `tool` or `developer` role, a server tool, an image or document
source it cannot send, an output format other than a JSON schema, and the `tools`,
`tool_choice` and `thinking` shapes of messages_openai_checks.py), though not for the fields
only a call takes (`max_tokens`, `metadata`, the sampling options).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from codelace_box.accounts.allowed_models import check_model_allowed
from codelace_box.errors import InvalidRequest
from codelace_box.gateway.admission import count_in_rpm
from codelace_box.gateway.advisor import advisor_route
from codelace_box.gateway.body_work import off_loop
from codelace_box.gateway.client import UpstreamBroken
from codelace_box.gateway.forbidden import ProviderWalled
from codelace_box.gateway.messages import (
    MESSAGES_ROUTE,
    check_body_shape,
    forwarded_beta,
    forwarded_headers,
    resolve_model,
)
from codelace_box.gateway.metering import input_token_estimate
from codelace_box.gateway.outcome import client_error, count_upstream_error
from codelace_box.gateway.request import ChatCall, new_call
from codelace_box.gateway.routing import ProviderUnavailable, RouteTable
from codelace_box.gateway.upstream import UpstreamRejected, open_upstream
from codelace_box.providers.anthropic_passthrough import MessagesPassthrough
from codelace_box.providers.base import JSON
from codelace_box.providers.billed_fields import check_billed_messages
from codelace_box.providers.messages_openai import chat_body
from codelace_box.providers.reasoning_details import reasoning_shown
from codelace_box.providers.tally import ESTIMATED_MEDIA_TOKENS, anthropic_media, input_estimate

COUNT_PATH = "/v1/messages/count_tokens"
if TYPE_CHECKING:
    from codelace_box.gateway.pipeline import Gateway
    from codelace_box.gateway.routing import ModelRoute


def _model(body: JSON) -> tuple[str, tuple[int, int]]:
    """The model a count_tokens body names, and its media (`refuse_stored_state`)."""
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequest("model: a model name is required", code="invalid_request")
    return model, check_body_shape(body)  # as /v1/messages (and Anthropic's count) refuse


def estimated_count(body: JSON, body_len: int, media: tuple[int, int] | None = None) -> int:
    """The box's count of a Messages body: a token per four bytes of it, its media as the hold
    sees it (tally.py anthropic_media): their inline base64 left out, each image or document
    counted ESTIMATED_MEDIA_TOKENS instead (as an answer the upstream never counted is
    charged). Counted as text, a screenshot's base64 filled Claude Code's /context. Text
    other than ASCII counts as charged too (tally.py input_estimate: a CJK character a token,
    an emoji four), where a token per four bytes made CJK 0.75 tokens a character. `media`:
    the messages' anthropic_media when the caller has it. Reasoning sealed in a thinking
    block's signature counts as its text, not as the base64 carrying it."""
    media = anthropic_media(body.get("messages")) if media is None else media
    body, fewer = reasoning_shown(body)
    body_len -= fewer
    by_bytes = input_token_estimate(body_len - media[1]) + ESTIMATED_MEDIA_TOKENS * media[0]
    return max(by_bytes, input_estimate(body, media))


async def count_tokens(
    gateway: Gateway,
    body: JSON,
    body_len: int,
    headers: Mapping[str, str],
    allowed_models: frozenset[str] | None = None,
    account: tuple[int, int] = (0, 0),
    request_id: str = "count_tokens",
    on_model: Callable[[str], None] | None = None,
    large: bool = False,
) -> JSON:
    """`{"input_tokens": N}` for a Messages body (`checked_count`); `account`: (user id, rpm or
    0); `large`: a body worked on on a body thread (gateway/body_work.py)."""
    args = (body, body_len, headers, allowed_models, on_model)
    if large:
        route, media, counted = await off_loop(checked_count, gateway.routes.as_loaded(), *args)
    else:
        route, media, counted = checked_count(gateway.routes, *args)
    if counted is not None:  # estimated
        return counted
    if (advisor := advisor_route(gateway.routes, route, body)) is not None:
        check_model_allowed(allowed_models, advisor.id)
    user_id, rpm = account
    if rpm:
        await gateway.writes.submit(partial(count_in_rpm, user_id=user_id, rpm=rpm))
    adapter = MessagesPassthrough(forwarded_headers(headers), path=COUNT_PATH)
    call = new_call((request_id, user_id, 0), body, route, adapter, body_len=0, output_cap=1,
                    hold_nanos=0, cap_from_client=False, ingress=MESSAGES_ROUTE)  # fmt: skip
    call.off_loop = large
    try:
        counted = await _ask_upstream(gateway, call)
    except Exception as exc:  # counted and logged as every route's upstream failures are
        error = client_error(exc)
        if error is None:  # a bug: the 500 that logs it
            raise
        count_upstream_error(call, error)
        raise error from None
    if counted is None and large:  # no count_tokens route upstream: estimated
        return {"input_tokens": await off_loop(estimated_count, body, body_len, media)}
    return counted or {"input_tokens": estimated_count(body, body_len, media)}


def checked_count(
    routes: RouteTable,
    body: JSON,
    body_len: int,
    headers: Mapping[str, str],
    allowed_models: frozenset[str] | None,
    on_model: Callable[[str], None] | None,
) -> tuple[ModelRoute, tuple[int, int], JSON | None]:
    """A Messages body's route, media and, toward a provider that does not count, the box's
    count; as on /v1/messages, 403 for a model the key may not call, 400 for a billed field
    the provider does not allow (nothing is billed, but the body reaches the operator's
    account as sent: an `mcp_servers` URL in it is one Anthropic connects to); `on_model`: told
    the model's id once the key may call it (the access line names it). Does no I/O."""
    route, media = _allowed_route(routes, body, allowed_models, on_model)
    check_billed_messages(
        body, forwarded_beta(route, headers), route.provider.allowed_fields, route.id,
        as_sent=route.provider.kind == "anthropic",
    )  # fmt: skip
    if route.provider.kind != "anthropic":  # translated: refused as its call would be
        chat_body(body, 1, call=False)  # (the call's check_request, but for a call's fields)
        return route, media, {"input_tokens": estimated_count(body, body_len, media)}
    return route, media, None


def _allowed_route(
    routes: RouteTable,
    body: JSON,
    allowed_models: frozenset[str] | None,
    on_model: Callable[[str], None] | None,
) -> tuple[ModelRoute, tuple[int, int]]:
    """The body's model route and media counts; 403 if the key may not call it (not the 503
    of a disabled provider); `on_model` told its id once resolved, for the access line of a
    refusal too (api/inference.py's run_call does the same)."""
    tell = on_model or _told_nobody
    try:
        model, media = _model(body)
        route = resolve_model(routes, model)
    except ProviderUnavailable as unavailable:
        tell(unavailable.model_id)
        check_model_allowed(allowed_models, unavailable.model_id)
        raise
    tell(route.id)
    check_model_allowed(allowed_models, route.id)
    return route, media


def _told_nobody(model_id: str) -> None:
    """No one to tell a count's model (a caller without an access line)."""


async def _ask_upstream(gateway: Gateway, call: ChatCall) -> JSON | None:
    """The upstream's count; None when it has no count_tokens route (its 404)."""
    try:
        opened = await open_upstream(
            gateway.client, gateway.routes, call, gateway.settings.max_retries, gateway.prober
        )
    except UpstreamRejected as exc:
        if exc.status != 404:  # an Anthropic-compatible upstream without count_tokens
            raise
        return None
    except ProviderWalled as exc:  # or a proxy's 404 page for the route it does not know
        if exc.upstream_status != 404:
            raise
        return None
    try:
        payload: Any = await opened.response.read_json()
    finally:
        opened.response.release()
    if not isinstance(payload, dict) or not _is_count(payload.get("input_tokens")):
        raise UpstreamBroken("the upstream's count_tokens answer has no input_tokens")
    return payload


def _is_count(value: Any) -> bool:
    """A token count: an integer not below 0 (a JSON `true` is no count, though Python's bool
    is an int)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
