"""The hints a call carries (fields the box adds that an upstream may not know, gateway/hints.py):
offered, left out where the provider refused them lately, remembered once it took a call
without them."""

from __future__ import annotations

from codelace_box.gateway.hints import STREAM_OPTIONS
from codelace_box.gateway.request import ChatCall
from codelace_box.gateway.routing import RouteTable
from codelace_box.providers.responses_passthrough import NativeResponses


def without_hints(call: ChatCall, names: set[str]) -> None:
    """Leave these hints the translation added out of the call's body (and out of its hints)."""
    call.hints = call.hints - names
    call.body = call.adapter.without_hints(call.body, names)


def remember_refused_hints(routes: RouteTable, call: ChatCall) -> None:
    """The provider took the call without the hints it refused: it does not know them, and
    its next calls go without them. Not before: a refusal that only seemed to name a hint (a
    client's own field `stream_options.x`, refused again without the hint) must not drop the
    hint from every user's calls (their streams' usage, asked by `stream_options`)."""
    if call.hints_refused:
        provider = call.route.provider
        routes.refused_hints.remember(provider.id, provider.base_url, call.hints_refused)


def offer_stream_usage(call: ChatCall) -> None:
    """A stream to an `openai` provider asks for its usage with `stream_options`, which the box
    adds: a hint, left out for a server that refuses the field (Mistral: 422 "extra_forbidden"),
    which gives its usage in the last chunk anyway. A client's own stream_options are theirs
    (include_usage is set in them all the same: providers/openai.py); a null is none, asked for
    as if absent, or a client could keep the provider's count from the box.
    A `--responses-api` provider is asked too, unless this call goes to its Responses API
    (whose stream ends with its usage): chat and Messages streams go to Chat Completions."""
    provider = call.route.provider
    native = isinstance(call.adapter, NativeResponses)
    chat_stream = call.stream and provider.kind == "openai" and not native
    if chat_stream and call.body.get(STREAM_OPTIONS) is None:
        call.hints = call.hints | {STREAM_OPTIONS}


def leave_out_refused_hints(routes: RouteTable, call: ChatCall) -> None:
    """Before sending: the hints this provider refused lately stay out."""
    if call.hints:
        provider = call.route.provider
        without_hints(call, routes.refused_hints.refused(provider.id, provider.base_url,
                                                          call.hints))  # fmt: skip
