"""OpenAI Chat Completions request body -> Anthropic Messages API request body (pure code).

Messages are translated by anthropic_messages; this module maps the options (max tokens,
sampling, stop, user, tools, tool_choice (OpenAI's allowed_tools too), reasoning_effort, the
client's own `thinking` or OpenRouter's `reasoning` (anthropic_thinking), response_format) to
their Anthropic
counterparts (structured-output schemas fitted by anthropic_schema; reasoning_effort as budget
thinking, or adaptive thinking at an effort on models that only take that). Whatever cannot be
honoured raises InvalidRequest (400).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from codelace_box.errors import InvalidRequest
from codelace_box.providers.anthropic_messages import cached_block, translate_messages
from codelace_box.providers.anthropic_schema import strict_schema
from codelace_box.providers.anthropic_thinking import (
    EFFORT_SHARE,
    MIN_THINKING_BUDGET,
    client_thinking,
    native_reasoning,
)

JSON = dict[str, Any]

_HEX_ID_RE = re.compile(r"[0-9a-fA-F-]{32,64}")  # uuids and hex digests
_PLAIN_ID_RE = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
_DIGIT_RUN_RE = re.compile(r"\d{7}")
_VERSION_RE = re.compile(r"(?:^|[-.])(\d{1,2})(?:[-.](\d{1,2}))?(?=$|[-.@:])")  # claude-opus-4-7
FALLBACK_MAX_TOKENS = 4096
_CHOICE_MODES = {"auto": "auto", "none": "none", "required": "any"}  # OpenAI's -> Anthropic's
MAX_THINKING_BUDGET = 128_000
# Anthropic's output_config.effort per OpenAI reasoning_effort, for adaptive thinking.
ADAPTIVE_EFFORT = {
    "minimal": "low", "low": "low", "medium": "medium", "high": "high", "xhigh": "xhigh",
    "max": "max",
}  # fmt: skip


def translate_request(
    body: JSON, *, upstream_model: str, stream: bool, default_max_tokens: int | None
) -> JSON:
    """The Anthropic `/v1/messages` body for an OpenAI chat completions body."""
    system, turns = translate_messages(body.get("messages"))
    max_tokens = resolve_max_tokens(body, default_max_tokens)
    body = native_reasoning(body, max_tokens, adaptive_only(upstream_model))
    out: JSON = {"model": upstream_model, "max_tokens": max_tokens, "messages": turns}
    if system:
        out["system"] = system
    if body.get("cache_control") is not None:  # automatic caching: the last cacheable block
        out.update(cached_block({}, body, "cache_control"))
    _add_sampling(out, body, upstream_model)
    _add_tools(out, body)
    _add_thinking(out, body, max_tokens, upstream_model)
    _add_output_format(out, body)
    if stream:
        out["stream"] = True
    return out


# -- options --------------------------------------------------------------------------------


def resolve_max_tokens(body: JSON, default_max_tokens: int | None) -> int:
    """max_completion_tokens, else max_tokens, else the model's default (Anthropic needs one)."""
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidRequest(f"{name} must be a positive integer", param=name)
        return value
    return default_max_tokens or FALLBACK_MAX_TOKENS


def _add_sampling(out: JSON, body: JSON, upstream_model: str) -> None:
    if takes_sampling(upstream_model):
        if body.get("temperature") is not None:
            out["temperature"] = body["temperature"]
        if body.get("top_p") not in (None, 1):  # top_p 1 restricts nothing
            out["top_p"] = body["top_p"]
        if body.get("top_k"):  # 0, OpenRouter's default, restricts nothing
            out["top_k"] = body["top_k"]
    _add_stop(out, body.get("stop"))
    user = body.get("user") or body.get("safety_identifier")
    if isinstance(user, str) and user:
        out["metadata"] = {"user_id": opaque_user_id(user)}


def opaque_user_id(user: str) -> str:
    """The OpenAI `user` as Anthropic's metadata.user_id: kept if opaque, else its SHA-256.

    Anthropic wants a uuid, hash or other opaque id of at most 256 characters and refuses one
    that looks like an email address or a phone number; a hash still tells users apart.
    """
    if _HEX_ID_RE.fullmatch(user) or (
        _PLAIN_ID_RE.fullmatch(user) and not _DIGIT_RUN_RE.search(user)
    ):
        return user
    return hashlib.sha256(user.encode()).hexdigest()


def _add_stop(out: JSON, stop: Any) -> None:
    """stop -> stop_sequences (empty ones dropped); Anthropic refuses whitespace-only ones."""
    listed = [stop] if isinstance(stop, str) else stop if isinstance(stop, list) else []
    stops = [s for s in listed if isinstance(s, str) and s]
    if any(not s.strip() for s in stops):
        raise InvalidRequest(
            'stop sequences of only whitespace (such as "\\n") are not supported by '
            "Anthropic models",
            param="stop",
        )
    if stops:
        out["stop_sequences"] = stops


def _add_tools(out: JSON, body: JSON) -> None:
    tools = body.get("tools") or []
    if not isinstance(tools, list):
        raise InvalidRequest("tools must be a list", param="tools")
    converted = [_tool(tool, f"tools[{i}]") for i, tool in enumerate(tools)]
    names = {tool["name"] for tool in converted}
    choice, allowed = _tool_choice(body.get("tool_choice"), names)
    if allowed is not None:
        converted = [tool for tool in converted if tool["name"] in allowed]
    if converted:
        out["tools"] = converted
    if choice is not None and choice["type"] == "any" and not converted:
        raise InvalidRequest("tool_choice required needs tools", param="tool_choice")
    if body.get("parallel_tool_calls") is False and converted:
        choice = choice or {"type": "auto"}
        if choice["type"] != "none":
            choice["disable_parallel_tool_use"] = True
    if choice is not None and converted:
        out["tool_choice"] = choice


def _tool(tool: Any, where: str) -> JSON:
    if not isinstance(tool, dict) or tool.get("type", "function") != "function":
        raise InvalidRequest(f"{where}: only function tools are supported", param=where)
    function = tool.get("function")
    if not isinstance(function, dict):
        raise InvalidRequest(f"{where}: only function tools are supported", param=where)
    name = function.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidRequest(f"{where}.function.name is required", param=where)
    schema = function.get("parameters") or {"type": "object", "properties": {}}
    if isinstance(schema, dict) and "type" not in schema:  # parameters are always an object
        schema = {"type": "object", **schema}
    converted: JSON = {"name": name, "input_schema": schema}
    if function.get("description"):
        converted["description"] = function["description"]
    if function.get("strict") is True:
        converted["strict"] = True
        converted["input_schema"] = strict_schema(schema)
    # the tool's breakpoint, else one beside its function's name (LiteLLM takes both places)
    return cached_block(converted, tool if "cache_control" in tool else function, where)


def _tool_choice(choice: Any, names: set[str]) -> tuple[JSON | None, set[str] | None]:
    """Anthropic's tool_choice, and the tools to send when not all (None: all of them)."""
    if choice is None:
        return None, None
    if isinstance(choice, str) and choice in _CHOICE_MODES:
        return {"type": _CHOICE_MODES[choice]}, None
    if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        return _allowed_tools(choice.get("allowed_tools"), names)
    name = _named_function(choice)
    if name is None:
        raise InvalidRequest(
            "tool_choice must be auto, none, required, {type: function, function: {name}} or "
            "{type: allowed_tools, allowed_tools: {mode, tools}}",
            param="tool_choice",
        )
    if name not in names:
        raise InvalidRequest(
            f"tool_choice names {name!r}, which is not in tools", param="tool_choice"
        )
    return {"type": "tool", "name": name}, None


def _named_function(choice: Any) -> str | None:
    """The name of `{type: function, function: {name}}` (or the Responses API's flat
    `{type: function, name}`, as allowed_tools lists may hold), else None."""
    if not isinstance(choice, dict):
        return None
    function = choice.get("function")
    name = function.get("name") if isinstance(function, dict) else choice.get("name")
    return name if isinstance(name, str) and name else None


def _allowed_tools(spec: Any, names: set[str]) -> tuple[JSON, set[str] | None]:
    """OpenAI's `allowed_tools` choice. Anthropic has no allowed list: auto (or, required, any)
    over every tool when all are allowed; one required tool is Anthropic's named choice; only
    a strict subset is sent alone, since a call to a tool the client did not allow would be
    wrong (its price is a prompt-cache prefix that differs from the calls with every tool)."""
    mode = spec.get("mode") if isinstance(spec, dict) else None
    listed = spec.get("tools") if isinstance(spec, dict) else None
    if mode not in ("auto", "required") or not isinstance(listed, list) or not listed:
        raise InvalidRequest(
            "tool_choice.allowed_tools needs mode auto or required and a non-empty tools list",
            param="tool_choice",
        )
    allowed = {_named_function(entry) for entry in listed}
    if None in allowed:
        raise InvalidRequest(
            "tool_choice.allowed_tools.tools are {type: function, function: {name}}",
            param="tool_choice",
        )
    unknown = sorted(str(name) for name in allowed - names)
    if unknown:
        raise InvalidRequest(
            f"tool_choice.allowed_tools names {', '.join(unknown)}, not in tools",
            param="tool_choice",
        )
    kind = _CHOICE_MODES[mode]
    if mode == "required" and len(allowed) == 1:
        return {"type": "tool", "name": str(next(iter(allowed)))}, None
    return {"type": kind}, (None if allowed == names else {str(n) for n in allowed})


def _add_thinking(out: JSON, body: JSON, max_tokens: int, upstream_model: str) -> None:
    own = client_thinking(body, max_tokens, adaptive_only(upstream_model))
    effort = body.get("reasoning_effort")
    if own is not None and not _tool_loop_without_thinking(out["messages"]):
        out["thinking"] = own
    if effort in (None, "none") or _tool_loop_without_thinking(out["messages"]):
        return
    if effort not in EFFORT_SHARE:
        raise InvalidRequest(
            f"reasoning_effort must be one of none, {', '.join(EFFORT_SHARE)}",
            param="reasoning_effort",
        )
    if adaptive_only(upstream_model):
        # these models leave the thinking text out unless asked: reasoning_content needs it
        out["thinking"] = {"type": "adaptive", "display": "summarized"}
        out["output_config"] = {"effort": ADAPTIVE_EFFORT[effort]}
        return
    if max_tokens <= MIN_THINKING_BUDGET:
        newer = body.get("max_completion_tokens") is not None
        sent = "max_completion_tokens" if newer else "max_tokens"
        raise InvalidRequest(
            f"reasoning_effort needs {sent} above {MIN_THINKING_BUDGET} on Anthropic models",
            param=sent,
        )
    out["thinking"] = {"type": "enabled", "budget_tokens": thinking_budget(effort, max_tokens)}


def adaptive_only(upstream_model: str) -> bool:
    """Claude Opus 4.7 and later (the Claude 5 family too) refuse budget thinking with a 400:
    they think adaptively, at an effort. Ids without a version keep budget thinking."""
    match = _VERSION_RE.search(upstream_model)
    return match is not None and (int(match[1]), int(match[2] or 0)) >= (4, 7)


def takes_sampling(upstream_model: str) -> bool:
    """Whether the model takes temperature and top_p: Claude Opus 4.7 and later refuse any
    value with a 400, so an OpenAI client's (often default) temperature is left out there, as
    OpenRouter does; it could not change their answer."""
    return not adaptive_only(upstream_model)


def takes_both_samplers(upstream_model: str) -> bool:
    """Whether the model takes temperature and top_p together: Claude Opus 4.1 and later refuse
    the pair ("cannot both be specified for this model"), older ones (Claude Sonnet 4, Opus 4,
    3.x) take it. Ids without a version are taken to refuse it."""
    match = _VERSION_RE.search(upstream_model)
    return match is not None and (int(match[1]), int(match[2] or 0)) < (4, 1)


def thinking_budget(effort: str, max_tokens: int) -> int:
    """Tokens of extended thinking for an effort: a share of max_tokens, >= 1024, < max_tokens."""
    share = int(max_tokens * EFFORT_SHARE[effort])
    return max(MIN_THINKING_BUDGET, min(share, max_tokens - 1, MAX_THINKING_BUDGET))


def _tool_loop_without_thinking(turns: list[JSON]) -> bool:
    """Continuing a tool loop whose assistant turn has no thinking block: thinking must stay off.

    With thinking on, Anthropic requires the last assistant turn of an ongoing tool loop to begin
    with the (signed) thinking block it produced; clients that did not keep it cannot have one.
    """
    if len(turns) < 2 or turns[-1]["role"] != "user" or turns[-2]["role"] != "assistant":
        return False
    answering_tools = any(b["type"] == "tool_result" for b in turns[-1]["content"])
    first = turns[-2]["content"][0]["type"]
    return answering_tools and first not in ("thinking", "redacted_thinking")


def _add_output_format(out: JSON, body: JSON) -> None:
    response_format = body.get("response_format")
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if response_format is None or kind == "text":
        return
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise InvalidRequest(
                "response_format.json_schema.schema must be an object", param="response_format"
            )
        fitted = strict_schema(schema)
        out.setdefault("output_config", {})["format"] = {"type": "json_schema", "schema": fitted}
        return
    if kind == "json_object":
        raise InvalidRequest(
            "response_format json_object is not supported by Anthropic models; "
            "send a json_schema response_format instead",
            param="response_format",
        )
    raise InvalidRequest(f"unknown response_format type {kind!r}", param="response_format")
