"""Names longer than OpenAI takes, in a Messages call translated to Chat Completions.

`metadata.user_id` goes as `user` when it fits OpenAI's 64 characters, else as its SHA-256 (64
hex digits, as stable): Claude Code sends a JSON object of about 150 characters, which OpenAI
refuses (400 string_above_max_length). Tool names: Anthropic takes up to 128 characters, and
Claude Code names an MCP server's tools `mcp__<server>__<tool>` (often past 64); OpenAI refuses
a function name over 64 characters (400 string_above_max_length) in `tools`, `tool_choice` and
earlier turns' `tool_calls`. Such a name goes to the upstream as its first 55 characters, `_`
and 8 hex digits of its SHA-256: the same name every turn, so a conversation's calls still match
their tool. The answer's calls get the full name back. (Codex's MCP tools on chat, named
namespace + name, are shortened alike: responses_tools.py.) Pure code.
"""

from __future__ import annotations

import hashlib
from typing import Any

JSON = dict[str, Any]
MAX_OPENAI_NAME = 64  # OpenAI's limit on `user` and on function names


def openai_user(user_id: str) -> str:
    """OpenAI's `user` for Anthropic's metadata.user_id."""
    if len(user_id) <= MAX_OPENAI_NAME:
        return user_id
    return hashlib.sha256(user_id.encode()).hexdigest()


def short_name(name: str) -> str:
    """The name as the upstream gets it (itself when it fits)."""
    if len(name) <= MAX_OPENAI_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: MAX_OPENAI_NAME - 9]}_{digest}"


def _functions(payload: JSON) -> list[Any]:
    """The `function` objects of a Chat Completions body that name a tool."""
    functions = [tool.get("function") for tool in payload.get("tools") or ()]
    choice = payload.get("tool_choice")
    if isinstance(choice, dict):
        functions.append(choice.get("function"))
    for message in payload.get("messages") or ():
        functions += [call.get("function") for call in message.get("tool_calls") or ()]
    return functions


def shorten_names(payload: JSON) -> dict[str, str]:
    """Shortens the names of `payload` (a body this box built: its own dicts) in place; the
    full name of each shortened one, by its short name."""
    full_names: dict[str, str] = {}
    for function in _functions(payload):
        name = function.get("name") if isinstance(function, dict) else None
        if isinstance(name, str) and len(name) > MAX_OPENAI_NAME:
            function["name"] = short_name(name)
            full_names[function["name"]] = name
    return full_names


def restore_names(blocks: list[JSON], full_names: dict[str, str]) -> None:
    """The full names back on an answer's tool_use blocks (in place)."""
    for block in blocks:
        if block.get("type") == "tool_use" and block.get("name") in full_names:
            block["name"] = full_names[block["name"]]
