"""Validation of Messages API request bodies, as strict as Anthropic's API (for the fake server).

`request_problem(body)` returns the first problem as Anthropic words it, or None: required and
unknown fields, turns alternating from user (consecutive ones of a role merged, as Anthropic
does), block shapes per role, blank text, tool_result placement (first in a user turn, answering
the tool_uses before), unique tool_use ids, system, sampling, tools, tool_choice, thinking.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from tests.fakes.anthropic_checks import (
    cache_control_problem,
    claude_version,
    clear_thinking_problem,
    content_problem,
    manual_thinking_problem,
    message_fields_problem,
    output_config_problem,
    sampling_problem,
    user_id_problem,
)
from tests.fakes.anthropic_safeguards import safeguards_problem
from tests.fakes.anthropic_tools import tool_reference_problem, tool_use_ids_problem, tools_problem

JSON = dict[str, Any]

TOP_LEVEL_FIELDS = {
    "model", "max_tokens", "messages", "system", "stop_sequences", "temperature", "top_p",
    "top_k", "metadata", "tools", "tool_choice", "thinking", "stream", "output_config",
    "service_tier", "cache_control", "context_management", "speed", "inference_geo",
    "mcp_servers", "container", "diagnostics",
}  # fmt: skip
BETA_FIELDS = {"fallback-credit-": "fallback_credit_token", "resumption-": "resumption"}
IMAGE_MEDIA_TYPES = {"image/jpeg", "image/png", "image/gif", "image/webp"}
TOOL_ID_RE = re.compile(r"^[a-zA-Z0-9_-]+$")
BLOCKS_BY_ROLE = {
    "user": {"text", "image", "document", "tool_result"},
    "assistant": {"text", "tool_use", "thinking", "redacted_thinking"},
}


class Invalid(Exception):
    """One validation problem, worded like Anthropic's invalid_request_error messages."""


def request_problem(body: Any, beta: str = "") -> str | None:
    """The first problem of a Messages API request body (sent with this `anthropic-beta`
    header), or None if it is valid."""
    try:
        _check_body(body, beta)
    except Invalid as problem:
        return str(problem)
    return None


def _check_body(body: Any, beta: str) -> None:
    if not isinstance(body, dict):
        raise Invalid("request body must be a JSON object")
    problem = safeguards_problem(body, beta)  # a beta's field: Claude Code's auto mode
    if problem:
        raise Invalid(problem)
    granted = {f for flag, f in BETA_FIELDS.items() if flag in beta}  # a refusal's retry
    for key in body:
        if key not in TOP_LEVEL_FIELDS | {"safeguards"} | granted:
            raise Invalid(f"{key}: Extra inputs are not permitted")
    for key in ("model", "max_tokens", "messages"):
        if key not in body:
            raise Invalid(f"{key}: Field required")
    if not isinstance(body["model"], str) or not body["model"]:
        raise Invalid("model: Input should be a valid string")
    max_tokens = body["max_tokens"]
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise Invalid("max_tokens: Input should be greater than or equal to 1")
    _check_messages(body["messages"], beta)
    _check_system(body.get("system"))
    _check_sampling(body)
    tool_names = _check_tools(body.get("tools"))
    _check_tool_choice(body.get("tool_choice"), tool_names)
    _check_thinking(body)
    problem = (
        output_config_problem(body.get("output_config"), beta)
        or sampling_problem(body["model"], body)
        or cache_control_problem(body)
        or clear_thinking_problem(body)
        or tool_use_ids_problem(body["messages"])
    )
    if problem:
        raise Invalid(problem)
    if "stream" in body and not isinstance(body["stream"], bool):
        raise Invalid("stream: Input should be a valid boolean")


# -- messages -------------------------------------------------------------------------------


def _check_messages(messages: Any, beta: str) -> None:
    if not isinstance(messages, list) or not messages:
        raise Invalid("messages: at least one message is required")
    previous_tool_ids: set[str] = set()
    turns = _turns(messages, beta)
    for n, (i, role, blocks) in enumerate(turns):
        if role != ("user" if n % 2 == 0 else "assistant"):  # only a first assistant turn
            raise Invalid(f"messages.{i}: roles must alternate between 'user' and 'assistant', "
                          "starting with 'user'")  # fmt: skip
        problem = content_problem(blocks, i, role == "assistant" and n == len(turns) - 1)
        if problem:
            raise Invalid(problem)
        if role == "user":
            _check_tool_results(blocks, previous_tool_ids, i)
        previous_tool_ids = {b["id"] for b in blocks if b.get("type") == "tool_use"}


def _turns(messages: list[Any], beta: str) -> list[tuple[int, str, list[JSON]]]:
    """The user/assistant turns (first message's index, role, blocks), each message checked;
    consecutive messages of one role are one turn, as Anthropic combines them."""
    turns: list[tuple[int, str, list[JSON]]] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise Invalid(f"messages.{i}: Input should be a valid dictionary")
        problem = message_fields_problem(message, i, beta)
        if problem:
            raise Invalid(problem)
        role = message.get("role")
        if role == "system" and turns:  # mid-conversation (a beta); effort-only: may be empty
            effort_only = bool(message.get("output_config"))
            _blocks(message.get("content"), f"messages.{i}", allow_empty=effort_only)
            continue
        if role not in BLOCKS_BY_ROLE:
            raise Invalid(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        prefill = role == "assistant" and i == len(messages) - 1
        blocks = _blocks(message.get("content"), f"messages.{i}", allow_empty=prefill)
        for j, block in enumerate(blocks):
            _check_block(block, role, f"messages.{i}.content.{j}")
        if turns and turns[-1][1] == role:
            turns[-1][2].extend(blocks)
        else:
            turns.append((i, role, list(blocks)))
    return turns


def _blocks(content: Any, where: str, allow_empty: bool) -> list[JSON]:
    if isinstance(content, str):
        if not content and not allow_empty:
            raise Invalid(f"{where}: all messages must have non-empty content")
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise Invalid(f"{where}.content: Input should be a valid string or list")
    if not content and not allow_empty:
        raise Invalid(f"{where}: all messages must have non-empty content")
    return content


def _check_tool_results(blocks: list[JSON], tool_ids: set[str], i: int) -> None:
    answered: set[str] = set()
    seen_other = False
    for block in blocks:
        if block.get("type") != "tool_result":
            seen_other = True
            continue
        if seen_other:
            raise Invalid(
                f"messages.{i}: tool_result blocks must come first in the content, "
                "before any other block"
            )
        if block["tool_use_id"] not in tool_ids:
            raise Invalid(
                f"messages.{i}: unexpected `tool_use_id` found in `tool_result` blocks: "
                f"{block['tool_use_id']}. Each `tool_result` block must have a corresponding "
                "`tool_use` block in the previous message."
            )
        answered.add(block["tool_use_id"])
    missing = tool_ids - answered
    if missing:
        raise Invalid(
            f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately "
            f"after: {', '.join(sorted(missing))}"
        )


def _check_block(block: Any, role: str, where: str) -> None:
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        raise Invalid(f"{where}: a content block needs a type")
    kind = block["type"]
    if kind not in BLOCKS_BY_ROLE[role]:
        raise Invalid(f"{where}: {kind} blocks are not allowed in {role} messages")
    _BLOCK_CHECKS[kind](block, where)


def _check_text(block: JSON, where: str) -> None:
    _only(block, {"type", "text", "cache_control", "citations"}, where)
    if not isinstance(block.get("text"), str) or not block["text"]:
        raise Invalid(f"{where}.text: text content blocks must be non-empty")


def _check_image(block: JSON, where: str) -> None:
    _only(block, {"type", "source", "cache_control"}, where)
    source = block.get("source")
    if not isinstance(source, dict):
        raise Invalid(f"{where}.source: Field required")
    if source.get("type") == "url":
        _only(source, {"type", "url"}, f"{where}.source")
        if not str(source.get("url", "")).startswith(("http://", "https://")):
            raise Invalid(f"{where}.source.url: must be an http(s) URL")
        return
    if source.get("type") != "base64":
        raise Invalid(f"{where}.source.type: Input should be 'base64' or 'url'")
    _only(source, {"type", "media_type", "data"}, f"{where}.source")
    if source.get("media_type") not in IMAGE_MEDIA_TYPES:
        raise Invalid(f"{where}.source.media_type: Input should be one of {IMAGE_MEDIA_TYPES}")
    _check_base64(source.get("data"), f"{where}.source.data")


def _check_document(block: JSON, where: str) -> None:
    _only(block, {"type", "source", "cache_control", "title", "context", "citations"}, where)
    source = block.get("source")
    if not isinstance(source, dict) or source.get("media_type") != "application/pdf":
        raise Invalid(f"{where}.source: expected a base64 application/pdf source")
    _check_base64(source.get("data"), f"{where}.source.data")


def _check_base64(data: Any, where: str) -> None:
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise Invalid(f"{where}: invalid base64 data") from None


def _check_tool_use(block: JSON, where: str) -> None:
    _only(block, {"type", "id", "name", "input", "cache_control"}, where)
    if not isinstance(block.get("id"), str) or not TOOL_ID_RE.match(block["id"]):
        raise Invalid(f"{where}.id: String should match pattern '^[a-zA-Z0-9_-]+$'")
    if not isinstance(block.get("name"), str) or not block["name"]:
        raise Invalid(f"{where}.name: Field required")
    if not isinstance(block.get("input"), dict):
        raise Invalid(f"{where}.input: Input should be a valid dictionary")


def _check_tool_result(block: JSON, where: str) -> None:
    _only(block, {"type", "tool_use_id", "content", "is_error", "cache_control"}, where)
    if not isinstance(block.get("tool_use_id"), str):
        raise Invalid(f"{where}.tool_use_id: Field required")
    content = block.get("content", "")
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise Invalid(f"{where}.content: Input should be a valid string or list")
    for k, inner in enumerate(content):
        kind = inner.get("type") if isinstance(inner, dict) else None
        check = _TOOL_RESULT_CHECKS.get(kind) if isinstance(kind, str) else None
        if check is None:
            raise Invalid(
                f"{where}.content.{k}: tool results hold text, image, document or "
                "tool_reference blocks"
            )
        check(inner, f"{where}.content.{k}")


def _check_thinking_block(block: JSON, where: str) -> None:
    _only(block, {"type", "thinking", "signature"}, where)
    if not isinstance(block.get("thinking"), str) or not block.get("signature"):
        raise Invalid(f"{where}: thinking blocks need thinking and signature")


def _check_redacted(block: JSON, where: str) -> None:
    _only(block, {"type", "data"}, where)
    if not isinstance(block.get("data"), str) or not block["data"]:
        raise Invalid(f"{where}.data: Field required")


def _check_tool_reference(block: JSON, where: str) -> None:
    problem = tool_reference_problem(block, where)
    if problem:
        raise Invalid(problem)


_TOOL_RESULT_CHECKS = {"text": _check_text, "image": _check_image, "document": _check_document,
                       "tool_reference": _check_tool_reference}  # fmt: skip
_BLOCK_CHECKS = {
    "text": _check_text,
    "image": _check_image,
    "document": _check_document,
    "tool_use": _check_tool_use,
    "tool_result": _check_tool_result,
    "thinking": _check_thinking_block,
    "redacted_thinking": _check_redacted,
}


def _only(obj: JSON, allowed: set[str], where: str) -> None:
    extra = set(obj) - allowed
    if extra:
        raise Invalid(f"{where}.{sorted(extra)[0]}: Extra inputs are not permitted")


# -- options --------------------------------------------------------------------------------


def _check_system(system: Any) -> None:
    if system is None or isinstance(system, str):
        return
    if not isinstance(system, list):
        raise Invalid("system: Input should be a valid string or list of text blocks")
    for i, block in enumerate(system):
        if not isinstance(block, dict) or block.get("type") != "text":
            raise Invalid(f"system.{i}: only text blocks are allowed in system")
        _check_text(block, f"system.{i}")
    if system and all(not block["text"].strip() for block in system):
        raise Invalid("system: text content blocks must contain non-whitespace text")


def _check_sampling(body: JSON) -> None:
    for key in ("temperature", "top_p"):
        value = body.get(key)
        if value is not None and not (isinstance(value, int | float) and 0 <= value <= 1):
            raise Invalid(f"{key}: Input should be less than or equal to 1")
    version = claude_version(str(body.get("model")))
    both = body.get("temperature") is not None and body.get("top_p") is not None
    if both and (version is None or version >= (4, 1)):  # Claude Opus 4.1 and later
        raise Invalid(
            "`temperature` and `top_p` cannot both be specified for this model. "
            "Please use only one."
        )
    stops = body.get("stop_sequences")
    if stops is not None and (
        not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops)
    ):
        raise Invalid("stop_sequences: Input should be a list of non-empty strings")
    if stops and not all(s.strip() for s in stops):
        raise Invalid("stop_sequences: each stop sequence must contain non-whitespace")
    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise Invalid("metadata: Input should be a valid dictionary")
        _only(metadata, {"user_id"}, "metadata")
        problem = user_id_problem(metadata.get("user_id"))
        if problem:
            raise Invalid(problem)


def _check_tools(tools: Any) -> set[str]:
    problem = tools_problem(tools)
    if problem:
        raise Invalid(problem)
    return {tool["name"] for tool in tools or ()}


def _check_tool_choice(choice: Any, tool_names: set[str]) -> None:
    if choice is None:
        return
    if not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none"):
        raise Invalid("tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'")
    if not tool_names:
        raise Invalid("tool_choice may only be specified while providing tools")
    _only(choice, {"type", "name", "disable_parallel_tool_use"}, "tool_choice")
    if choice["type"] == "tool" and choice.get("name") not in tool_names:
        raise Invalid(f"tool_choice.name: no tool named {choice.get('name')!r}")


def _check_thinking(body: JSON) -> None:
    thinking = body.get("thinking")
    if thinking is None or thinking == {"type": "disabled"}:
        return
    if isinstance(thinking, dict) and thinking.get("type") == "adaptive":
        _only(thinking, {"type", "display"}, "thinking")
        return
    if not isinstance(thinking, dict) or thinking.get("type") != "enabled":
        raise Invalid("thinking.type: Input should be 'enabled', 'adaptive' or 'disabled'")
    problem = manual_thinking_problem(body["model"])
    if problem:
        raise Invalid(problem)
    budget = thinking.get("budget_tokens")
    if not isinstance(budget, int) or budget < 1024:
        raise Invalid(
            "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
        )
    if budget >= body["max_tokens"]:
        raise Invalid("`max_tokens` must be greater than `thinking.budget_tokens`")
    if body.get("temperature") not in (None, 1):
        raise Invalid("`temperature` may only be set to 1 when thinking is enabled")
    choice = body.get("tool_choice") or {}
    if choice.get("type") in ("any", "tool"):
        raise Invalid("Thinking may not be enabled when tool_choice forces tool use.")
    _check_thinking_in_tool_loop(body["messages"])


def _check_thinking_in_tool_loop(messages: list[JSON]) -> None:
    last = messages[-1]
    if last["role"] != "user" or len(messages) < 2 or isinstance(last["content"], str):
        return
    if not any(b.get("type") == "tool_result" for b in last["content"]):
        return
    assistant = messages[-2]["content"]
    first = assistant[0].get("type") if isinstance(assistant, list) and assistant else "text"
    if first not in ("thinking", "redacted_thinking"):
        raise Invalid(
            f"messages.{len(messages) - 2}.content.0.type: Expected `thinking` or "
            "`redacted_thinking`, but found `text`. When `thinking` is enabled, a final "
            "`assistant` message must start with a thinking block."
        )
