"""Request fields that make a provider bill beyond the model's token prices.

The user is charged the catalog price; a field that buys fallbacks to other models, paid
plugins, web search or a pricier service tier would make the operator pay the difference. Such a
field is refused with a 400 naming it unless the operator allowed it for the provider
(`providers add/update NAME --allow-field FIELD`). BILLED_FIELDS is the one list: body fields,
Anthropic's server tools (by their type in `tools`, on every route), the tools a gateway or
provider runs itself (`server_tools`: OpenRouter's `openrouter:*`, OpenAI's hosted ones) and the
long-context beta (the `anthropic-beta` header of /v1/messages). Which tools of a body the
upstream runs itself is server_tools.py's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from codelace_box.errors import InvalidRequest
from codelace_box.providers.messages_openai_tool_changes import defined_tools
from codelace_box.providers.server_tools import (  # noqa: F401 (runs_server_tools: as before)
    LOOP_TOOL_PREFIXES,
    SERVER_TOOLS,
    hosted_tools_in,
    is_hosted,
    lists_no_tools,
    runs_server_tools,
    server_tools_in,
)

# field -> what it buys at the provider (shown in the refusal and the README)
BILLED_FIELDS: dict[str, str] = {
    "models": "fallbacks to other models, at their prices",
    "route": "fallback routing to other models",
    "fallbacks": "other models answering in the requested one's place, at their prices (LiteLLM's "
    "fallbacks; Anthropic's server-side fallback, whose entries also set their own max_tokens "
    "and speed)",
    "context_window_fallbacks": "LiteLLM's router answering with other models, at their prices, "
    "when the prompt is past the window",
    "content_policy_fallbacks": "LiteLLM's router answering with other models, at their prices, "
    "when the content is refused",
    "context_window_fallback_dict": "LiteLLM answering with another model, at its price, when "
    "the prompt is past the window",
    "plugins": "paid plugins (web search, PDF/OCR parsing)",
    "provider": "provider routing, possibly to pricier providers",
    "transforms": "prompt transforms",
    "preset": "an OpenRouter preset of the operator's account: its own model choice and "
    "fallbacks, provider routing and server tools, at their prices",
    "web_search_options": "paid web search",
    "service_tier": "a pricier service tier (only auto and default pass)",
    "modalities": "audio or image output, billed at its own, higher token prices",
    "enable_search": "Alibaba Cloud Model Studio's (DashScope's) web search, billed per search, "
    "its results put into the prompt as input tokens",
    "enable_code_interpreter": "Alibaba Cloud Model Studio's (DashScope's) code interpreter, "
    "billed per call",
    "audio": "audio output or input (`modalities` audio, `input_audio` parts, files of "
    "audio), billed at the audio token prices, many times the text ones",
    # Anthropic's server tools (in `tools`, every route) and, on /v1/messages, its billed options
    "web_search": "Anthropic's web search server tool, billed per search",
    "web_fetch": "Anthropic's web fetch server tool",
    "code_execution": "Anthropic's code execution server tool, billed per hour",
    "advisor": "Anthropic's advisor server tool: a second model (Opus) answers inside the call, "
    "billed at that model's rates; allowed, its calls are charged at that model's own catalog "
    "prices, so it must be in the catalog for this provider (its --upstream-model); taken on "
    "/v1/messages only",
    "speed": "Anthropic's fast mode, billed at premium prices (only standard passes)",
    "inference_geo": "inference pinned to a region, billed at a premium (only global passes)",
    "mcp_servers": "Anthropic's MCP connector: remote tool results billed as input the "
    "request does not show, past what was held",
    "context-1m": "the 1M-token context beta (anthropic-beta: context-1m-*), long prompts at "
    "a higher price",
    "server_tools": "a gateway's or provider's own tools in `tools` or `tool_choice` "
    "(OpenRouter's openrouter:* web search, web fetch, image generation, advisor...; hosted "
    "web_search, file_search, code_interpreter, a shell in the provider's container), run by "
    "the upstream, billed per use and bringing input of their own",
}
# Values of a field that buy nothing extra (a list passes when all its items do).
FREE_VALUES: dict[str, frozenset[Any]] = {
    "service_tier": frozenset({"auto", "default"}),
    "modalities": frozenset({"text"}),
    "speed": frozenset({"standard"}),
    "inference_geo": frozenset({"global"}),
}
LONG_CONTEXT_BETA = "context-1m-"
# The betas under which a tool change defines a tool inline (`_check_defined_tools`)
INLINE_TOOL_BETAS = ("inline-tools-", "mid-conversation-tool-changes-")
# A file named so is audio (OpenRouter's and OpenAI's audio input formats)
AUDIO_EXTENSIONS = (".wav", ".mp3", ".mpga", ".m4a", ".aac", ".flac", ".ogg", ".oga", ".opus",
                    ".aiff", ".aif", ".pcm")  # fmt: skip
MESSAGES_ONLY = frozenset({*SERVER_TOOLS.values(), "context-1m", "server_tools"})  # not fields
_BODY_FIELDS = tuple(name for name in BILLED_FIELDS if name not in MESSAGES_ONLY)  # in order
_BODY_FIELD_SET = frozenset(_BODY_FIELDS)  # a body naming none of them (most) skips the walk


# Fields whose provider puts content of its own into the prompt, billed as prompt tokens of a
# size nobody knows in advance: OpenRouter's web plugin (search results; web_search_options
# turns it on) and its other plugins (a parsed file, a compressed prompt), Model Studio's
# enable_search: adds_to_the_prompt.
_ONLINE = ":online"  # an OpenRouter model variant that runs the web plugin on every call


def adds_to_the_prompt(body: dict[str, Any], upstream_model: str = "") -> bool:
    """Whether a call has the provider add input of its own to the prompt (the window is held
    for it, as for media: metering.input_token_bound): by a field of its body, or by the
    upstream model the catalog names (OpenRouter's `...:online`; its slugs are lower case).
    On every call's path: plain lookups, no generator."""
    if _ONLINE in upstream_model:
        return True
    plugins, search = body.get("plugins"), body.get("web_search_options")
    searching = body.get("enable_search")  # (Model Studio's: its results in the prompt)
    if plugins is None and search is None and searching is None:
        return False
    return (
        _present("plugins", plugins)
        or _present("web_search_options", search)
        or _present("enable_search", searching)
    )


def is_billed_field(name: str) -> bool:
    """Whether the operator can allow this field (it is one of BILLED_FIELDS)."""
    return name in BILLED_FIELDS


# Fields whose mere presence buys the feature: OpenAI's own example turns web search on with
# `web_search_options={}` (and LiteLLM maps it to Anthropic's paid search tool).
ON_WHEN_SENT = frozenset({"web_search_options"})


_AS_SENT = re.compile(r"(?P<tool>web_search|web_fetch|code_execution|advisor)_\d{8}|context-1m-.+")


def field_named(name: str) -> str:
    """The field an operator means by a name as a request carries it: a long-context beta
    (`context-1m-2025-08-07`, the SPEC's `context-1m-*`) is context-1m, a dated server tool
    type (`web_search_20250305`) its tool; any other name as it is."""
    found = None if name in BILLED_FIELDS else _AS_SENT.fullmatch(name.lower())
    if found is None:
        return name
    return found.group("tool") or "context-1m"


def _present(name: str, value: Any) -> bool:
    """Whether a billed field's value asks for what it bills (none, false, a free value: no)."""
    if value is None or value is False or (value in ([], {}) and name not in ON_WHEN_SENT):
        return False
    free = FREE_VALUES.get(name, frozenset())
    if isinstance(value, list):
        return not all(isinstance(item, str) and item in free for item in value)
    return not (isinstance(value, str) and value in free)


def _refuse(name: str, model: str, param: str, sent: str = "") -> InvalidRequest:
    """The 400 of a billed field; `sent`: the beta flag as the request named it, said first
    (Claude Code resends without its long-context beta a 400 that names the flag)."""
    return InvalidRequest(
        f"{f'{param} {sent}: ' if sent else ''}{name} is not allowed for {model}: it makes the "
        f"provider bill beyond the model's price ({BILLED_FIELDS[name]}); the operator may allow "
        "it for this provider",
        code="field_not_allowed",
        param=param,
    )


def check_billed_fields(body: dict[str, Any], allowed: Iterable[str], model: str) -> None:
    """400 `field_not_allowed` for the first billed field the provider does not allow, and
    for Anthropic's server tools in `tools` (on chat too: an `openai` provider may be a
    LiteLLM or OpenRouter front of Claude that runs them, billed per use)."""
    permitted = set(allowed)
    if not _BODY_FIELD_SET.isdisjoint(body):  # (one look-up a field sent, not 15 walked)
        for name in _BODY_FIELDS:  # (most are absent: no call to _present for those)
            value = body.get(name)
            if value is None or name in permitted or not _present(name, value):
                continue
            raise _refuse(name, model, name)
    if not lists_no_tools(body):  # (else neither look at the tools finds one)
        _check_tools(body, permitted, model)
    if "audio" not in permitted:
        where = _audio_input_in(body.get("messages"))
        if where is not None:
            raise _refuse("audio", model, where)


def _check_tools(body: dict[str, Any], permitted: set[str], model: str) -> None:
    """`check_billed_fields` of the tools: Anthropic's server tools, then the hosted ones."""
    for name in server_tools_in(body):
        if name not in permitted:
            raise _refuse(name, model, "tools")
    if "server_tools" not in permitted:
        for param in hosted_tools_in(body):
            raise _refuse("server_tools", model, param)


def _audio_input_in(messages: Any) -> str | None:
    """Where the first audio part of chat messages is, `input_audio` or a `file` of audio
    (`_is_audio_file`): OpenAI bills its audio tokens (`prompt_tokens_details.audio_tokens`) at
    the audio input price, 16 times the text one on gpt-4o-audio, while the user pays the
    model's one input price."""
    for i, message in enumerate(messages if isinstance(messages, list) else ()):
        content = message.get("content") if isinstance(message, dict) else None
        for j, part in enumerate(content if isinstance(content, list) else ()):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "input_audio" or (kind == "file" and _is_audio_file(part.get("file"))):
                return f"messages[{i}].content[{j}]"
    return None


def _is_audio_file(file: Any) -> bool:
    """A `data:audio/...` file_data (as a translated Responses input_file is), or a file
    named as audio, by its `filename` or its URL's path: OpenRouter takes a URL in file_data
    (documented for PDFs, which pass; its audio docs say URLs are not supported, but a file
    named .mp3 is audio whatever the upstream makes of it)."""
    if not isinstance(file, dict):
        return False
    data, name = file.get("file_data"), file.get("filename")
    if isinstance(data, str) and data[:11].lower() == "data:audio/":
        return True
    url_path = urlsplit(data).path if isinstance(data, str) and "://" in data[:16] else ""
    return any(
        isinstance(n, str) and n.lower().endswith(AUDIO_EXTENSIONS) for n in (name, url_path)
    )


def check_billed_messages(
    body: dict[str, Any], beta: str, allowed: Iterable[str], model: str, *, as_sent: bool = True
) -> None:
    """The same for a Messages body and its `anthropic-beta` header: top-level fields, server
    tools (by their type) and the long-context beta, in the header or, for a body sent on as
    it came (`as_sent`: to an `anthropic` provider), in the body's `anthropic_beta`."""
    permitted = set(allowed)
    check_billed_fields(body, permitted, model)
    in_body = body_betas(body) if as_sent and "anthropic_beta" in body else ""
    flags = f"{beta},{in_body}".lower()
    if any(flag in flags for flag in INLINE_TOOL_BETAS):  # (no walk for a call without them)
        _check_defined_tools(body.get("messages"))
    fallbacks = body.get("fallbacks")
    for entry in fallbacks if isinstance(fallbacks, list) else ():
        # an entry's own fields replace the request's for its model (fast mode, ...)
        for name in entry if isinstance(entry, dict) else ():
            if name in BILLED_FIELDS and name not in permitted and _present(name, entry[name]):
                raise _refuse(name, model, "fallbacks")
    if "context-1m" in permitted:
        return
    for param, flags in (("anthropic-beta", beta), ("anthropic_beta", in_body)):
        for flag in (flag.strip() for flag in flags.split(",")):  # whatever case it is sent in
            if flag.lower().startswith(LONG_CONTEXT_BETA):
                raise _refuse("context-1m", model, param, sent=flag)


def _check_defined_tools(messages: Any) -> None:
    """400 for a server tool (Anthropic's, one of its loop, a hosted one) a tool change defines
    inline (betas `inline-tools-*`, `mid-conversation-tool-changes-*`): what such a tool bills
    and holds, and the advisor's prices, are read from `tools`, where it must be listed."""
    for tool in defined_tools(messages):
        kind = tool.get("type")
        kind = kind.lower() if isinstance(kind, str) else ""
        if kind and (kind.startswith(LOOP_TOOL_PREFIXES) or is_hosted(kind, tool)):
            raise InvalidRequest(
                f"messages: the server tool {tool['type']!r} is defined in a tool change "
                "(tool_addition); this gateway takes server tools in `tools` only, where the "
                "operator allows those that bill beyond the model's price",
                param="messages",
            )


def body_betas(body: dict[str, Any]) -> str:
    """The beta flags a Messages body names in `anthropic_beta` (a list, or one flag), comma
    separated: Bedrock's field for them, which a gateway in front of Bedrock speaking the
    Messages API passes on with the body (the box sends the body as it came)."""
    flags = body.get("anthropic_beta")
    if isinstance(flags, str):
        return flags
    return ",".join(f for f in flags if isinstance(f, str)) if isinstance(flags, list) else ""
