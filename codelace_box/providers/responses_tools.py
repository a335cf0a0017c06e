"""Responses API tools -> Chat Completions function tools (pure code): function tools as they
are, custom (freeform) tools as a function taking one string, a namespace's tools named
namespace + name (as Codex names its MCP tools; the `functions` namespace's by their own names;
one past OpenAI's 64 characters shortened as messages_openai_names.py shortens),
hosted tools dropped or refused; the tools of `additional_tools` input items too (Codex's code
mode declares its tools there); and tool_choice, `allowed_tools` included."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from codelace_box.errors import InvalidRequest
from codelace_box.providers.messages_openai_names import short_name

JSON = dict[str, Any]

# Hosted tool types dropped from `tools` instead of refused, and why.
IGNORED_TOOL_TYPES: dict[str, str] = {
    "web_search": "Codex sends it by default; the box runs no hosted search, so the model "
    "answers without it",
    "tool_search": "Codex sends it (`execution: client`) for models it knows by name, e.g. an "
    "alias `gpt-5.5`; the model is offered the tools Codex sent, without the search",
}
ADDITIONAL_TOOLS = "additional_tools"  # an input item declaring tools (Codex's code mode)
Declared = tuple[str, JSON]  # an additional_tools item and where it is (`input[3]`)
DEFAULT_NAMESPACE = "functions"  # its tools keep their own names (chat's own `functions.` prefix)
CUSTOM_INPUT_SCHEMA: JSON = {
    "type": "object",
    "properties": {"input": {"type": "string", "description": "The raw input of the tool."}},
    "required": ["input"],
    "additionalProperties": False,
}


@dataclass
class ChatTools:
    """Chat function tools for Responses tools, and how to name their calls back."""

    tools: list[JSON] = field(default_factory=list)
    custom: set[str] = field(default_factory=set)  # chat names of custom (freeform) tools
    namespaced: dict[str, tuple[str, str]] = field(default_factory=dict)  # -> (namespace, name)

    def add(self, tool: JSON, where: str, namespace: str = "") -> None:
        """One Responses tool (a namespace's tools become functions named namespace + name,
        the public name Codex gives them)."""
        kind = tool.get("type")
        if not isinstance(kind, str):  # (an array or object could not even be looked up)
            raise InvalidRequest(f"{where}.type must be a string", param=f"{where}.type")
        if kind in IGNORED_TOOL_TYPES and not namespace:
            return
        if kind == "namespace" and not namespace:
            self._namespace(tool, where)
            return
        if kind not in ("function", "custom"):
            raise InvalidRequest(
                f"{where}: tools of type {kind!r} are not supported (only function, custom and "
                "namespace tools: the box runs no hosted tools)",
                param=f"{where}.type",
            )
        converted = _function_tool(tool, where) if kind == "function" else _custom_tool(tool, where)
        name = converted["function"]["name"]
        chat = converted["function"]["name"] = chat_name(namespace, name) if namespace else name
        self.namespaced.pop(chat, None)  # (a name declared again: its calls are the last one's)
        self.custom.discard(chat)
        if namespace:
            self.namespaced[chat] = (namespace, name)
        if kind == "custom":
            self.custom.add(chat)
        self.tools.append(converted)

    def _namespace(self, tool: JSON, where: str) -> None:
        namespace, members = _tool_name(tool, where), tool.get("tools")
        if not isinstance(members, list):
            raise InvalidRequest(f"{where}.tools must be a list", param=f"{where}.tools")
        for j, member in enumerate(members):
            if not isinstance(member, dict):
                raise InvalidRequest(f"{where}.tools[{j}] must be an object", param=where)
            self.add(member, f"{where}.tools[{j}]", namespace)


def chat_name(namespace: str, name: str) -> str:
    """The chat function name of a namespace's tool (and of its calls handed back), shortened
    past the 64 characters OpenAI takes (Codex's MCP namespace and tool joined may be longer)."""
    return name if namespace == DEFAULT_NAMESPACE else short_name(namespace + name)


def chat_tools(tools: Any, declared: Sequence[Declared] = ()) -> ChatTools:
    """Chat function tools for Responses `tools` (function, custom and namespace ones), then
    for the `additional_tools` items `declared` in the input (a later one of a name wins)."""
    converted = ChatTools()
    if tools is not None and not isinstance(tools, list):
        raise InvalidRequest("tools must be a list", param="tools")
    _add_all(converted, tools or [], "tools")
    names = [t["function"]["name"] for t in converted.tools]
    if len(set(names)) != len(names):
        raise InvalidRequest("tools have duplicate names", param="tools")
    for at, item in declared:
        where = f"{at}.tools"
        if not isinstance(item.get("tools"), list):
            raise InvalidRequest(f"{where} must be a list", param=where)
        _add_all(converted, item["tools"], where)
    if declared:  # (a name declared again: the last declaration, in the first one's place)
        converted.tools = list({t["function"]["name"]: t for t in converted.tools}.values())
    return converted


def _add_all(converted: ChatTools, tools: list[Any], where: str) -> None:
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise InvalidRequest(f"{where}[{i}] must be an object", param=f"{where}[{i}]")
        converted.add(tool, f"{where}[{i}]")


def without_hosted(tools: list[Any]) -> list[Any]:
    """Tools without the hosted ones the box drops (for a native upstream)."""
    return [t for t in tools if not (isinstance(t, dict) and t.get("type") in IGNORED_TOOL_TYPES)]


def _tool_name(tool: JSON, where: str) -> str:
    name = tool.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidRequest(f"{where}.name is required", param=f"{where}.name")
    return name


def _function_tool(tool: JSON, where: str) -> JSON:
    """Responses' flat function tool -> chat's nested one. `strict` is passed only when set:
    chat's default (false) then matches what clients that omit it expect from a chat model."""
    function: JSON = {"name": _tool_name(tool, where)}
    if isinstance(tool.get("description"), str):
        function["description"] = tool["description"]
    parameters = tool.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise InvalidRequest(f"{where}.parameters must be an object", param=f"{where}.parameters")
    function["parameters"] = parameters or {"type": "object", "properties": {}}
    if isinstance(tool.get("strict"), bool):
        function["strict"] = tool["strict"]
    return {"type": "function", "function": function}


def _custom_tool(tool: JSON, where: str) -> JSON:
    """A custom (freeform) tool as a function taking one string, its grammar in the description."""
    given = tool.get("description")
    description = given if isinstance(given, str) else ""
    form = tool.get("format")
    if isinstance(form, dict) and form.get("type") == "grammar":
        syntax, definition = form.get("syntax"), form.get("definition")
        if not isinstance(definition, str):
            raise InvalidRequest(f"{where}.format.definition is required", param=f"{where}.format")
        description += (
            f"\n\nThe input must be valid in this {syntax} grammar; pass it verbatim as the "
            f"`input` string:\n{definition}"
        )
    elif form not in (None, {"type": "text"}):
        raise InvalidRequest(f"{where}.format must be text or grammar", param=f"{where}.format")
    function = {
        "name": _tool_name(tool, where),
        "description": description.strip() or "A tool taking free-form text as `input`.",
        "parameters": CUSTOM_INPUT_SCHEMA,
    }
    return {"type": "function", "function": function}


def chat_tool_choice(choice: Any, names: set[str]) -> Any:
    """Chat's tool_choice for a Responses one (None: leave it to the upstream's default)."""
    if choice is None or choice in ("auto", "none", "required"):
        return choice
    if not isinstance(choice, dict) or choice.get("type") not in ("function", "custom"):
        raise InvalidRequest(
            "tool_choice must be auto, none, required, {type: function, name} or "
            "{type: allowed_tools, mode, tools}",
            param="tool_choice",
        )
    name = choice.get("name")
    if not isinstance(name, str) or name not in names:  # (an array or object: no tool's name)
        raise InvalidRequest(
            f"tool_choice names {name!r}, which is not in tools", param="tool_choice"
        )
    return {"type": "function", "function": {"name": name}}


# The tool types an allowed_tools entry may have: a hosted one (web_search, image_generation,
# mcp, ...) there turns that tool on at a native upstream as listing it in `tools` does
_NAMED = ("function", "custom")


def allowed_tools(choice: JSON, names: set[str]) -> tuple[str, set[str]]:
    """(mode, tool names) of an `allowed_tools` tool_choice: a chat upstream gets only those
    tools, and the mode (`auto` or `required`) as its tool_choice."""
    mode, listed = choice.get("mode"), choice.get("tools")
    if mode not in ("auto", "required"):
        raise InvalidRequest("tool_choice.mode must be auto or required", param="tool_choice.mode")
    if not isinstance(listed, list) or not listed:
        raise InvalidRequest("tool_choice.tools must list tools", param="tool_choice.tools")
    allowed = {
        t["name"]
        for t in listed
        if isinstance(t, dict) and isinstance(t.get("name"), str) and t.get("type") in _NAMED
    }  # (a name that is an array or object could not be put in a set: it names no tool)
    if len(allowed) != len(listed) or not allowed <= names:
        raise InvalidRequest(
            "tool_choice.tools must name function tools of tools", param="tool_choice.tools"
        )
    return mode, allowed
