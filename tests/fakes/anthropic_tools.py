"""Tool definitions and tool references, as strictly as Anthropic checks them (for the fake).

`tools_problem(tools)` words the first problem of a request's `tools` as Anthropic does, or
None: fields, name pattern, input schema (the strict subset when `strict`), unique names, and
`defer_loading` (tool search: a deferred tool's schema stays out of the context until a
`tool_reference` in a tool result loads it; at least one tool must stay loaded).
`tool_reference_problem(block, where)` checks such a reference block.
"""

from __future__ import annotations

import re
from typing import Any

from tests.fakes.anthropic_checks import schema_problem

TOOL_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
# `eager_input_streaming`: fine-grained tool streaming (the input streamed unbuffered, as Claude
# Code asks with CLAUDE_CODE_ENABLE_FINE_GRAINED_TOOL_STREAMING=1)
TOOL_FIELDS = {
    "name", "description", "input_schema", "cache_control", "strict", "type", "defer_loading",
    "eager_input_streaming",
}  # fmt: skip
# The advisor server tool (beta advisor-tool-2026-03-01): the advisor model, its calls per
# request and output per call, its own prompt caching
ADVISOR_TOOL_RE = re.compile(r"^advisor_\d{8}$")
ADVISOR_TOOL_FIELDS = {"name", "type", "model", "max_uses", "max_tokens", "caching",
                       "cache_control"}  # fmt: skip
# Anthropic-defined client tools (no input_schema: Anthropic adds their definitions itself)
DEFINED_TOOL_RE = re.compile(r"^(bash|text_editor|computer|memory)_\d{8}$")
DEFINED_TOOL_FIELDS = {
    "name", "type", "cache_control", "display_width_px", "display_height_px", "display_number",
    "max_characters", "enable_zoom",
}  # fmt: skip


def _defined_tool_problem(tool: Any, where: str) -> str | None:
    """None for a tool that is no Anthropic-defined one; else its problem, or ""."""
    kind = str(tool.get("type")) if isinstance(tool, dict) else ""
    advisor = ADVISOR_TOOL_RE.match(kind) is not None
    if not isinstance(tool, dict) or not (advisor or DEFINED_TOOL_RE.match(kind)):
        return None
    if advisor and not isinstance(tool.get("model"), str):
        return f"{where}.model: Field required"
    extra = set(tool) - (ADVISOR_TOOL_FIELDS if advisor else DEFINED_TOOL_FIELDS)
    if extra:
        return f"{where}.{sorted(extra)[0]}: Extra inputs are not permitted"
    return "" if isinstance(tool.get("name"), str) else f"{where}.name: Field required"


def _tool_problem(tool: Any, where: str) -> str | None:
    if not isinstance(tool, dict):
        return f"{where}: Input should be a valid dictionary"
    extra = set(tool) - TOOL_FIELDS
    if extra:
        return f"{where}.{sorted(extra)[0]}: Extra inputs are not permitted"
    if not isinstance(tool.get("name"), str) or not TOOL_NAME_RE.match(tool["name"]):
        return f"{where}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'"
    schema = tool.get("input_schema")
    if not isinstance(schema, dict) or schema.get("type") != "object":
        return f"{where}.input_schema.type: Input should be 'object'"
    if "defer_loading" in tool and not isinstance(tool["defer_loading"], bool):
        return f"{where}.defer_loading: Input should be a valid boolean"
    return schema_problem(schema, f"{where}.input_schema") if tool.get("strict") else None


def tools_problem(tools: Any) -> str | None:
    """Anthropic's refusal of a request's tools, or None."""
    if tools is None:
        return None
    if not isinstance(tools, list):
        return "tools: Input should be a valid list"
    names: set[str] = set()
    for i, tool in enumerate(tools):
        problem = _defined_tool_problem(tool, f"tools.{i}")
        if problem is None:
            problem = _tool_problem(tool, f"tools.{i}")
        if problem:
            return problem
        if tool["name"] in names:
            return f"tools: Tool names must be unique ({tool['name']})"
        names.add(tool["name"])
    if tools and all(tool.get("defer_loading") is True for tool in tools):
        return "All tools have defer_loading set. At least one tool must be non-deferred."
    return None


def tool_reference_problem(block: dict[str, Any], where: str) -> str | None:
    """A `tool_reference` block of a tool result (client-side tool search): the name of the
    tool it loads, and nothing else but a cache breakpoint."""
    extra = set(block) - {"type", "tool_name", "cache_control"}
    if extra:
        return f"{where}.{sorted(extra)[0]}: Extra inputs are not permitted"
    if not isinstance(block.get("tool_name"), str) or not block["tool_name"]:
        return f"{where}.tool_name: Field required"
    return None


def tool_use_ids_problem(messages: list[Any]) -> str | None:
    """Anthropic's refusal of a tool_use id used before anywhere in the request (in another
    turn too: "messages.1.content.2: `tool_use` ids must be unique"), or None."""
    seen: set[Any] = set()
    for i, message in enumerate(messages):
        content = message.get("content") if isinstance(message, dict) else None
        for j, block in enumerate(content if isinstance(content, list) else []):
            if not isinstance(block, dict) or block.get("type") != "tool_use":
                continue
            if block.get("id") in seen:
                return f"messages.{i}.content.{j}: `tool_use` ids must be unique"
            seen.add(block.get("id"))
    return None


# Anthropic-defined tools as a client names them (on /v1/messages, and on chat through LiteLLM),
# and what Anthropic documents it adds for them: the tool-use system prompt (346), computer
# use's (499) and definition (735), the text editor (700), bash (245).
DEFINED_TOOLS: list[dict[str, Any]] = [
    {"type": "computer_20250124", "name": "computer", "display_width_px": 1024,
     "display_height_px": 768},
    {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"},
    {"type": "bash_20250124", "name": "bash"},
]  # fmt: skip
DEFINED_TOOLS_TOKENS = 346 + 499 + 735 + 700 + 245
