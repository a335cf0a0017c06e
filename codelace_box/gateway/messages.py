"""An Anthropic Messages API request, checked and priced: the `/v1/messages` ingress adapter.

`prepare_messages_call` parses a Messages body into the pipeline's one call (`ChatCall`, its
`ingress` the route): the model (or alias) routed, the output cap the client's `max_tokens`,
the worst case held at the dearest input price (cache writes may cost more than input). The
upstream adapter depends on the provider's kind: an `anthropic` provider gets the body as sent
(providers/anthropic_passthrough.py), an `openai` one a translation
(providers/messages_openai.py). Nothing here does I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from codelace_box.errors import InvalidRequest, NotFound
from codelace_box.gateway.advisor import advisor_hold, advisor_route
from codelace_box.gateway.dialects import THREAD_UNSUPPORTED
from codelace_box.gateway.extra_samplings import advisor_tokens, compaction_tokens
from codelace_box.gateway.metering import (
    PROVIDER_PROMPT_TOKENS,
    defined_tools_bound,
    loop_input_bound,
    output_token_bound,
)
from codelace_box.gateway.request import (
    DEFAULT_CONTEXT_TOKENS,
    MAX_HOLD_NANOS,
    MAX_TOKENS,
    MESSAGES_ROUTE,
    ChatCall,
    new_call,
)
from codelace_box.gateway.routing import ModelRoute, RouteTable
from codelace_box.money import token_cost_nanos
from codelace_box.providers.base import JSON, ProviderAdapter
from codelace_box.providers.billed_fields import (
    LONG_CONTEXT_BETA,
    adds_to_the_prompt,
    body_betas,
    check_billed_messages,
)
from codelace_box.providers.file_refs import local_media_url, local_url_message
from codelace_box.providers.tally import anthropic_blocks, anthropic_media

FORWARDED_HEADERS = ("anthropic-version", "anthropic-beta")
# What a forwarded header value may not hold: a control character (RFC 9110 5.5; the upstream
# client refuses to send it) or anything but ASCII: a byte that is no UTF-8 reaches the box as a
# lone surrogate, which the upstream client leaves out, so `context-1m<0xE9>-...` would pass the
# billed-beta check and reach the provider as `context-1m-...` (version and beta names are ASCII)
_CONTROL = re.compile("[^\t\x20-\x7e]")
LONG_CONTEXT_TOKENS = 1_000_000  # the window Anthropic's long-context beta opens
# Anthropic's message threads keep a conversation on the operator's account and replay it as
# input the body does not show (past the hold), to whoever names a message id of it. Refused in
# the shape Anthropic's SDKs take for "send it whole, without a thread" (THREAD_UNSUPPORTED).
_NO_SOURCE: dict[str, Any] = {}
_CODE_OUTPUT = "code_execution_output"  # (bash_)code_execution_output: a file the run wrote
STATELESS = (
    "thread: server-held conversation state is not supported, the box is stateless: send the "
    "whole conversation in messages"
)


def _bad(message: str) -> InvalidRequest:
    return InvalidRequest(message, code="invalid_request")


def check_messages(messages: Any) -> None:
    """400 unless `messages` is a non-empty array of message objects (also count_tokens's)."""
    if not isinstance(messages, list) or not messages:
        raise _bad("messages: must be a non-empty array of message objects")
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _bad(f"messages.{index}: must be an object")
        if not isinstance(message.get("role"), str):
            raise _bad(f"messages.{index}.role: must be a string such as user or assistant")
        if not isinstance(message.get("content"), str | list):
            raise _bad(f"messages.{index}.content: must be a string or an array of blocks")


def _file_in(blocks: list[Any]) -> list[Any] | None:
    """Where the first of these blocks naming a stored file is, as path steps (`_named_file`)."""
    for index, block in enumerate(blocks):
        found = _named_file(block) if type(block) is dict else None
        if found is not None:
            return [index, *found]
    return None


def _named_file(block: dict[str, Any]) -> list[Any] | None:
    """Where a block names a stored file: its own `file_id` (container_upload) or its source's
    (a document or image of the Files API), or a block it holds (a tool result's content, a
    web fetch result's document, a document's content source). Not a tool call's input (the
    client's own arguments), nor a code execution result's outputs: the files its run wrote,
    which the model does not read (a conversation that ran code goes on)."""
    kind = block.get("type")
    if type(kind) is str and kind.endswith(_CODE_OUTPUT):
        return None
    source = block.get("source")
    source = source if type(source) is dict else _NO_SOURCE
    if block.get("file_id") is not None:
        return ["file_id"]
    if source.get("file_id") is not None:
        return ["source", "file_id"]
    held = block.get("content")
    found = (
        _file_in(held) if type(held) is list else _named_file(held) if type(held) is dict else None
    )
    if found is not None:
        return ["content", *found]
    held = source.get("content")
    if type(held) is list and (found := _file_in(held)) is not None:
        return ["source", "content", *found]
    return None


def _custom_skill(container: Any) -> str | None:
    """Where the first custom skill of a `container` is (`container.skills.N.skill_id`)."""
    skills = container.get("skills") if type(container) is dict else None
    for index, skill in enumerate(skills if type(skills) is list else ()):
        if type(skill) is dict and skill.get("type") != "anthropic":
            return f"container.skills.{index}.skill_id"
    return None


def refuse_stored_state(body: JSON) -> tuple[int, int]:
    """A 400 for a body naming what is stored on the provider account by its id: a file
    (`file_id`) or a custom skill (`container.skills`). The box has no Files or Skills API, so
    no user uploaded either: they are the operator's, and the model would read them
    (count_tokens: count them) to whoever learned their id. As chat refuses a `file` part by
    `file_id` (gateway/request.py). Anthropic's own skills pass. Returned: the messages'
    media (tally.py anthropic_media), found by the same walk (`anthropic_blocks`), which also
    says whether any object there has a `file_id`: only then are the blocks looked through
    again for one naming a stored file (its path for the message)."""
    skill = _custom_skill(body.get("container"))
    if skill is not None:
        raise _bad(
            f"{skill}: a custom skill is stored on the provider's account, which the box does "
            "not keep for you: only Anthropic's skills (type anthropic) can be loaded"
        )
    messages, system = body.get("messages"), body.get("system")
    media, inline, named = anthropic_blocks(messages)
    if media and (local := _local_url_in_messages(messages)) is not None:
        raise _bad(local_url_message(local[1], ".".join(map(str, local[0]))))
    found = _file_in_messages(messages) if named else None
    if found is None and type(system) is list and (found := _file_in(system)) is not None:
        found = ["system", *found]
    if found is not None:
        raise _bad(
            f"{'.'.join(map(str, found))}: names a file stored on the provider's account, "
            "which the box does not keep for you: send the file inline (a base64, text or url "
            "source)"
        )
    return media, inline


_URL_MEDIA = ("image", "document")  # blocks whose `url` source the upstream fetches


def _local_url_in_messages(messages: Any) -> tuple[list[Any], str] | None:
    """Where the first block of these messages with media by a URL that is no web address
    is (`_local_url_in`), and that URL."""
    for index, message in enumerate(messages if type(messages) is list else ()):
        content = message.get("content") if type(message) is dict else None
        if type(content) is list and (found := _local_url_in(content)) is not None:
            return ["messages", index, "content", *found[0]], found[1]
    return None


def _local_url_in(blocks: list[Any]) -> tuple[list[Any], str] | None:
    """The path steps to the first image or document of these blocks whose `url` source is no
    web address nor inline data (providers/file_refs.py: a self-hosted upstream would open it
    on its own machine), and that URL; at any depth the model reads (a tool result's content,
    a document's content source, as `_named_file`)."""
    for index, block in enumerate(blocks):
        if type(block) is not dict:
            continue
        source = block.get("source")
        source = source if type(source) is dict else _NO_SOURCE
        url = source.get("url") if source.get("type") == "url" else None
        if block.get("type") in _URL_MEDIA and local_media_url(url):
            return [index, "source", "url"], str(url)
        held_in = (
            (["source", "content"], source.get("content")),
            (["content"], block.get("content")),
        )
        for steps, held in held_in:
            if type(held) is list and (found := _local_url_in(held)) is not None:
                return [index, *steps, *found[0]], found[1]
    return None


def _file_in_messages(messages: Any) -> list[Any] | None:
    """Where the first block of these messages naming a stored file is (`_file_in`)."""
    for index, message in enumerate(messages if type(messages) is list else ()):
        content = message.get("content") if type(message) is dict else None
        if type(content) is list and (found := _file_in(content)) is not None:
            return ["messages", index, "content", *found]
    return None


def validate_messages_body(body: JSON) -> tuple[str, int, tuple[int, int]]:
    """The model name, max_tokens and media (`refuse_stored_state`) of a Messages body whose
    shape the box relies on."""
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise _bad("model: a model name is required")
    cap = body.get("max_tokens")
    if not isinstance(cap, int) or isinstance(cap, bool) or not 1 <= cap <= MAX_TOKENS:
        raise _bad(f"max_tokens: must be an integer from 1 to {MAX_TOKENS}")
    if body.get("stream") is not None and not isinstance(body.get("stream"), bool):
        raise _bad("stream: must be true or false")
    return model, cap, check_body_shape(body)


def check_body_shape(body: JSON) -> tuple[int, int]:
    """400 for what a Messages call and a count of its body are refused for alike (its
    `messages`, `system` and `thread`, `refuse_stored_state`); its media."""
    check_messages(body.get("messages"))
    system = body.get("system")
    if system is not None and not isinstance(system, str | list):
        raise _bad("system: must be a string or an array of text blocks")
    if body.get("thread") is not None:
        raise InvalidRequest(STATELESS, code=THREAD_UNSUPPORTED, param="thread")
    return refuse_stored_state(body)


def messages_input_bound(
    body_len: int,
    body: JSON,
    context_tokens: int,
    upstream_model: str = "",
    media: tuple[int, int] | None = None,
) -> int:
    """An upper bound of the input tokens: one per body byte, what the provider adds, and the
    model's context window once when media is attached (as for chat). The media's inline data
    is covered by that window, not counted again a token per byte: a 5 MB PDF would otherwise
    hold for 6.7M tokens, more than any context, and refuse most balances. An Anthropic-defined
    tool (computer use, text editor, bash, memory: a `type` other than `custom`) is named in a
    few bytes, but Anthropic adds its definition and system prompt: defined_tools_bound.
    A server tool's (or an MCP server's) loop reads its results, input of unknown size, on each
    further turn, and the usage sums the turns: the window once per turn after the first. A
    provider adding input of its own to the prompt (adds_to_the_prompt): the window once.
    `media`: the messages' anthropic_media, when the caller has it (`refuse_stored_state`)."""
    parts, inline = anthropic_media(body.get("messages")) if media is None else media
    bound = body_len - inline + PROVIDER_PROMPT_TOKENS + defined_tools_bound(body.get("tools"))
    unsized = parts or adds_to_the_prompt(body, upstream_model)  # (a gateway's search results)
    return bound + (context_tokens if unsized else 0) + loop_input_bound(body, context_tokens)


def media_context(context_tokens: int, beta: str) -> int:
    """The window media reserves: the model's, or the million tokens the long-context beta
    (`context-1m-*`, forwarded only where the operator allowed it) lets the prompt fill, in
    whatever case it is sent (as check_billed_messages refuses it)."""
    if LONG_CONTEXT_BETA in beta.lower():
        return max(context_tokens, LONG_CONTEXT_TOKENS)
    return context_tokens


def billed_window(
    route: ModelRoute, body: JSON, headers: Mapping[str, str], default_context_tokens: int
) -> int:
    """The billed fields and flags of a Messages call checked (the long-context beta in the
    anthropic-beta header, or in the body's `anthropic_beta`, Bedrock's field, which goes on
    with a body sent as it came), and the window its media reserves (`media_context`)."""
    beta = forwarded_beta(route, headers)
    as_sent = route.provider.kind == "anthropic"  # (translated: no anthropic_beta goes on)
    check_billed_messages(body, beta, route.provider.allowed_fields, route.id, as_sent=as_sent)
    if as_sent and "anthropic_beta" in body:
        beta = f"{beta},{body_betas(body)}"
    return media_context(route.context_tokens or default_context_tokens, beta)


def resolve_model(routes: RouteTable, model: str) -> ModelRoute:
    """The route of a model name; a bare name that is no alias is an unknown model (404, as
    Anthropic answers it), not a malformed one."""
    try:
        return routes.resolve(model)
    except InvalidRequest as exc:
        if exc.code != "invalid_model":
            raise
        raise NotFound(
            f"model: no model or alias named {model!r} (the operator can alias it)",
            code="model_not_found",
        ) from None


def header_values(headers: Mapping[str, str], name: str) -> str:
    """A header's value; one sent on several lines joined by commas (as HTTP means it)."""
    getall = getattr(headers, "getall", None)
    values = getall(name, []) if getall is not None else [headers.get(name) or ""]
    return ",".join(value for value in values if value)


def forwarded_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The client's anthropic-version and anthropic-beta, to send on upstream."""
    sent = {name: header_values(headers, name) for name in FORWARDED_HEADERS}
    for name, value in sent.items():
        if _CONTROL.search(value):
            raise _bad(f"the {name} header holds a control character or one that is not ASCII")
    return {name: value for name, value in sent.items() if value}


def forwarded_beta(route: ModelRoute, headers: Mapping[str, str]) -> str:
    """The `anthropic-beta` flags the upstream will see: an `anthropic` provider's only (the
    translation to an `openai` one sends no such header, so its flags bill nothing there;
    Claude Code sends context-1m-* with its default model)."""
    return header_values(headers, "anthropic-beta") if route.provider.kind == "anthropic" else ""


def messages_adapter(
    route: ModelRoute, headers: Mapping[str, str], body: JSON | None = None
) -> ProviderAdapter:
    """The upstream adapter of a Messages call to this route's provider (an `anthropic` one
    gets thinking.display as sent; translated, "omitted" is done by the box)."""
    if route.provider.kind == "anthropic":
        from codelace_box.providers.anthropic_passthrough import MessagesPassthrough

        return MessagesPassthrough(forwarded_headers(headers))
    from codelace_box.providers.messages_openai_display import (
        MessagesToOpenAIOmitted,
        omits_thinking,
    )

    if body is not None and omits_thinking(body):
        return MessagesToOpenAIOmitted(route.id)
    from codelace_box.providers.messages_openai import MessagesToOpenAI

    return MessagesToOpenAI(route.id)


def hold_for(route: ModelRoute, input_bound: int, output_cap: int, either: int = 0) -> int:
    """The worst case of a call: every input token at the dearest input price, and `either`
    tokens (a compaction pass's, input or output) at the dearer of the two."""
    dearest = max(route.max_input_per_1m_nanos, route.output_per_1m_nanos)
    worst = token_cost_nanos(
        input_bound, output_cap, route.max_input_per_1m_nanos, route.output_per_1m_nanos
    ) + token_cost_nanos(either, 0, dearest, 0)
    return min(worst, MAX_HOLD_NANOS)


def prepare_messages_call(
    routes: RouteTable,
    body: JSON,
    body_len: int,
    headers: Mapping[str, str],
    *,
    request_id: str,
    user_id: int,
    key_id: int,
    default_context_tokens: int = DEFAULT_CONTEXT_TOKENS,
) -> ChatCall:
    """Validate, route and price a Messages request (nothing is reserved yet)."""
    model, cap, media = validate_messages_body(body)
    route = resolve_model(routes, model)
    context = billed_window(route, body, headers, default_context_tokens)
    adapter = messages_adapter(route, headers, body)
    adapter.check_request(body, route.upstream_model)
    loop = output_token_bound(body, cap, context)  # a server tool's loop: several model calls
    bound = messages_input_bound(body_len, body, context, route.upstream_model, media)
    anthropic = route.provider.kind == "anthropic"  # translated: the edit is not sent on
    compaction = compaction_tokens(body, context) if anthropic else 0  # (usage iterations)
    hold = hold_for(route, bound, loop, compaction)  # and charged (extra_samplings.py)
    passes = hold_for(route, 0, 0, compaction) if compaction else 0  # (their part, for a 402)
    advisor = advisor_route(routes, route, body) if anthropic else None
    if advisor is not None:  # its calls: at its prices, or dearer (gateway/advisor.py)
        advised = advisor_hold(advisor, route, *advisor_tokens(body, context))
        hold, passes = hold + advised, passes + advised
    call = new_call(
        (request_id, user_id, key_id), body, route, adapter, body_len=body_len,
        output_cap=cap, hold_nanos=hold, stream=bool(body.get("stream")), ingress=MESSAGES_ROUTE,
    )  # fmt: skip
    call.advisor, call.passes_nanos = advisor, passes
    call.effort_added = route.provider.kind == "openai"  # thinking -> reasoning_effort
    if call.effort_added:  # an openai provider: what a strict server (Mistral) may refuse
        metadata = body.get("metadata")
        user = isinstance(metadata, dict) and bool(metadata.get("user_id"))
        call.hints = frozenset({"reasoning_content", *(("user",) if user else ())})
    call.shown_model = model  # as Anthropic echoes it: Claude Code keeps thinking it signed so
    call.loop_output = loop
    call.media = media  # the admission's walk, for an estimate at settlement (input_guess)
    return call
