"""A Responses API request, checked and priced: the `/v1/responses` ingress adapter.

`prepare_responses_call` translates the body to Chat Completions (providers/responses_request.py)
and runs that through the chat path's own checks, routing and pricing (`prepare_call`), so the
billed-field rules, the provider adapter's checks, the output cap and the hold are the chat
path's. The call keeps the Responses context; the answer is written back in the Responses
dialect (gateway/dialects.py). A provider added with `--responses-api` gets the client's body
instead (providers/responses_passthrough.py; the call's context stays None). The hold counts the
larger of the two bodies: a translation may add to what the upstream reads. Nothing here does I/O.
"""

from __future__ import annotations

import re
from typing import TypeVar

from codelace_box.errors import CodelaceError, InvalidRequest
from codelace_box.gateway.hints import HINT_FIELDS
from codelace_box.gateway.request import DEFAULT_CONTEXT_TOKENS, ChatCall, prepare_call
from codelace_box.gateway.routing import RouteTable
from codelace_box.jsonwire import dumps
from codelace_box.providers.base import JSON
from codelace_box.providers.openai import REASONING_CONTENT
from codelace_box.providers.responses_compaction import without_foreign
from codelace_box.providers.responses_passthrough import NativeResponses
from codelace_box.providers.responses_request import translate_request

RESPONSES_ROUTE = "/v1/responses"
E = TypeVar("E", bound=CodelaceError)
# Chat fields a check of the chat path may name -> the Responses field the client sent.
_FIELD_NAMES = (
    (re.compile(r"\bmessages\[\d+\][\w.\[\]]*|^messages$"), "input"),
    (re.compile(r"\bmax_(completion_)?tokens\b"), "max_output_tokens"),
    (re.compile(r"\breasoning_effort\b"), "reasoning.effort"),
    (re.compile(r"\bresponse_format\b"), "text.format"),
)


def prepare_responses_call(
    routes: RouteTable,
    body: JSON,
    body_len: int,
    *,
    request_id: str,
    user_id: int,
    key_id: int,
    default_context_tokens: int = DEFAULT_CONTEXT_TOKENS,
) -> ChatCall:
    """Validate, translate, route and price a Responses request (nothing is reserved yet)."""
    model = body.get("model") if isinstance(body, dict) else None
    route = routes.resolve(model) if isinstance(model, str) and model else None
    kind, model_id = (route.provider.kind, route.id) if route is not None else ("", "")
    native = route is not None and route.provider.responses_api
    checked = without_foreign(body) if native else body  # its own compaction: for it to read
    translated = translate_request(checked, keep_thinking=kind == "anthropic", model=model_id)
    chat = translated.body
    chat_len = len(dumps(chat))
    try:
        call = prepare_call(
            routes, chat, max(body_len, chat_len), request_id=request_id, user_id=user_id,
            key_id=key_id, default_context_tokens=default_context_tokens,
        )  # fmt: skip
    except InvalidRequest as refused:  # a check of the chat path: name the fields as sent
        raise in_responses_terms(refused) from None
    call.ingress = RESPONSES_ROUTE
    if call.route.provider.responses_api:  # the upstream takes the Responses body as it is
        call.body, call.adapter = body, NativeResponses()
    else:
        call.context = translated.context
        _add_hints(call, chat)
    return call


def _add_hints(call: ChatCall, chat: JSON) -> None:
    """The fields a translated call passes on that a server may not know (gateway/hints.py)."""
    kind = call.route.provider.kind
    call.effort_added = kind == "openai" and "reasoning_effort" in chat  # reasoning.effort
    if kind == "openai":
        handed_back = any(REASONING_CONTENT in m for m in chat["messages"])
        # max_output_tokens goes as max_completion_tokens, and as max_tokens to servers
        # other than OpenAI (providers/openai.py), some of which refuse the first (Mistral)
        given = [name for name in (*HINT_FIELDS, "max_completion_tokens") if name in chat]
        call.hints = frozenset([*given, *([REASONING_CONTENT] if handed_back else [])])
    elif kind == "anthropic" and chat.get("prompt_cache_key") and "cache_control" not in chat:
        ask_to_cache(call)


def ask_to_cache(call: ChatCall) -> None:
    """A call with a `prompt_cache_key` (Codex's thread id) to an `anthropic` provider asks for
    Anthropic's automatic caching (a top-level `cache_control`: the last cacheable block), as
    OpenAI caches a prompt unasked: each turn of a conversation then reads what came before at
    the cache-read price. A hint: a server that does not know the field is asked again
    without it (gateway/hints.py)."""
    call.body = {**call.body, "cache_control": {"type": "ephemeral"}}
    call.hints = call.hints | {"cache_control"}


def in_client_terms(call: ChatCall, param: str) -> str:
    """An upstream's `param` as the client named the field: a Responses call translated to Chat
    Completions (`messages[2]` -> `input`, `max_tokens` -> `max_output_tokens`, ...)."""
    if call.ingress.startswith(RESPONSES_ROUTE) and call.context is not None:
        for pattern, name in _FIELD_NAMES:
            param = pattern.sub(name, param)
    return param


def refusal_code(call: ChatCall, status: int, message: str) -> tuple[str, str] | None:
    """The code and param the adapter reads an upstream's refusal as (Anthropic's "prompt is too
    long": context_length_exceeded on `messages`), the param as the client named the field."""
    known = call.adapter.error_code(status, message)
    return (known[0], in_client_terms(call, known[1])) if known else None


def in_responses_terms(error: E) -> E:
    """The chat path's refusal (a 400, a 402) with the Responses field names (`messages[2]` ->
    `input`, `max_completion_tokens` -> `max_output_tokens`, ...) in its message and param."""
    message, param = error.message, error.param
    for pattern, name in _FIELD_NAMES:
        message = pattern.sub(name, message)
        param = pattern.sub(name, param) if param else param
    return type(error)(message, code=error.code, param=param)
