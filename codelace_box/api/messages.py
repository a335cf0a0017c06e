"""/v1/messages and /v1/messages/count_tokens: Anthropic's Messages API (Claude Code's).

A thin shell like /v1/chat/completions: the key (from `x-api-key` or `Authorization: Bearer`),
the Messages ingress adapter (gateway/messages.py), then the same reserve, call, relay and
settlement. Errors on these routes are rendered in Anthropic's shape by api/errors.py.
count_tokens is never charged: an `anthropic` upstream counts, otherwise the box estimates.
"""

from __future__ import annotations

from functools import partial

from sanic import Request
from sanic.response import HTTPResponse

from codelace_box.accounts.keys import KEY_PREFIX, AuthContext
from codelace_box.api.blueprint import Blueprint
from codelace_box.api.common import bearer_token, json_body, json_response, keyed_auth
from codelace_box.api.inference import admission, run_call
from codelace_box.api.observe import note_asked_model
from codelace_box.errors import AuthenticationFailed, CodelaceError
from codelace_box.gateway.body_work import OFF_LOOP_BODY_BYTES, off_loop
from codelace_box.gateway.containers import refuse_foreign_container
from codelace_box.gateway.count_tokens import count_tokens
from codelace_box.gateway.messages import prepare_messages_call
from codelace_box.gateway.pipeline import Gateway

bp = Blueprint("messages")


def presented_key(request: Request) -> str:
    """The box key among `x-api-key` and `Authorization: Bearer`. Claude Code sends both when
    the user's own ANTHROPIC_API_KEY is still exported next to ANTHROPIC_AUTH_TOKEN: the one
    that is a box key is taken; two different box keys are refused (which one was meant?)."""
    api_key = request.headers.get("x-api-key", "").strip()  # a header's trailing blanks are
    sent = [k for k in (api_key, bearer_token(request)) if k]  # not its value (RFC 9110)
    if not sent:
        raise AuthenticationFailed("missing API key: send x-api-key: cl_... (or a Bearer token)")
    ours = {key for key in sent if key.startswith(KEY_PREFIX)}
    if len(ours) > 1:
        raise AuthenticationFailed(
            "x-api-key and Authorization carry two different keys: send one box key"
        )
    return ours.pop() if ours else sent[0]


async def messages_auth(request: Request) -> AuthContext:
    """The caller's identity from `x-api-key` (Anthropic's way) or a bearer token (cached
    briefly: common.keyed_auth)."""
    return await keyed_auth(request, presented_key(request))


@bp.post("/v1/messages")
async def messages(request: Request) -> HTTPResponse | None:
    """Anthropic Messages, streaming or not, metered against the caller's balance."""
    prepare = partial(prepare_messages_call, headers=request.headers)
    return await run_call(request, await messages_auth(request), prepare)


@bp.post("/v1/messages/count_tokens")
async def messages_count_tokens(request: Request) -> HTTPResponse:
    """`{"input_tokens": N}` for a Messages body; never charged."""
    auth = await messages_auth(request)
    large = len(request.body) >= OFF_LOOP_BODY_BYTES  # its work on a thread (body_work.py)
    body = await off_loop(json_body, request, between_turns=True) if large else json_body(request)
    if "container" in body:
        await refuse_foreign_container(body, auth.user_id)
    gateway: Gateway = request.app.ctx.gateway
    account = (auth.user_id, admission(gateway, auth).rpm)
    try:
        counted = await count_tokens(
            gateway, body, len(request.body), request.headers, auth.allowed_models, account,
            request_id=request.ctx.request_id,
            on_model=partial(setattr, request.ctx, "model"),  # for the access line (observe.py)
            large=large,
        )  # fmt: skip
    except CodelaceError:  # refused before its model resolved: the one the body asked for
        note_asked_model(request, body)
        raise
    return json_response(counted)
