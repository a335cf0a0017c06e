"""The tools a request body names that the upstream runs itself, billed per use and bringing
input of their own: Anthropic's server tools (by their dated type), the free tools of their
loop (tool search), the hosted tools of OpenAI and other gateways (`HOSTED_TOOLS`, namespaced
types), and those that run another model (OpenRouter's advisor, subagent, fusion), found in
`tools` and in what `tool_choice` names. billed_fields.py refuses those not allowed."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

# Anthropic server tool types (their dated names start so) -> the field that allows them.
SERVER_TOOLS = {"web_search_": "web_search", "web_fetch_": "web_fetch",
                "code_execution_": "code_execution", "advisor_": "advisor"}  # fmt: skip
_SERVER_TOOL_PREFIXES = tuple(SERVER_TOOLS)
# Anthropic's server tools that cost nothing of their own (no --allow-field) but run the same
# server loop: the model samples again after each result (tool search's tool references)
_LOOP_ONLY_PREFIXES = ("tool_search_tool_",)
LOOP_TOOL_PREFIXES = (*_SERVER_TOOL_PREFIXES, *_LOOP_ONLY_PREFIXES)
# Tool types an upstream runs itself (OpenAI's hosted tools, which OpenRouter also takes on chat,
# `web_search` as its shorthand; xAI's x_search and collections_search; Moonshot's (Kimi's)
# builtin_function: its $web_search billed per call, the results in the next prompt; a bare
# web_fetch or code_execution, as gateways name Anthropic's), by their undated name in lower
# case (a compatible server may match types in any case); and any namespaced type
# (`openrouter:*`, `orq:*`): a gateway's own server tools. Not the tools whose calls come back
# to the client to run (local_shell, apply_patch, custom, computer_use_preview, computer): they
# bill tokens only and read nothing of the operator's. `shell` is either: hosted in a container
# of the provider (`environment` container_auto, or container_reference: a container of the
# operator's account), local otherwise (`is_hosted`).
HOSTED_TOOLS = frozenset({"web_search", "web_search_preview", "file_search", "code_interpreter",
                          "image_generation", "mcp", "tool_search", "web_fetch", "code_execution",
                          "x_search", "collections_search", "builtin_function"})  # fmt: skip
_DATED = re.compile(r"_\d{4}_\d{2}_\d{2}$")  # web_search_2025_08_26
Where = int | str  # a tool's index in `tools`, or where in `tool_choice` it is named


def runs_server_tools(body: dict[str, Any]) -> bool:
    """Whether a body lets the provider fetch input of its own: an Anthropic server
    tool in `tools` (search results, a fetched page, code output, the advisor's answer) or an
    MCP server (`mcp_servers`), whose results are billed as input of a size nobody knows in
    advance, read again on each turn of the server's loop; or a free tool of that loop (tool
    search); or a hosted tool, in `tools` or named by `tool_choice`."""
    if body.get("mcp_servers"):
        return True
    return not lists_no_tools(body) and any(
        is_hosted(kind, tool) or kind.startswith(LOOP_TOOL_PREFIXES)
        for _, kind, tool in _tool_types(body)
    )


def lists_no_tools(body: dict[str, Any]) -> bool:
    """Whether `_tool_types` finds nothing, known without its generator (about 1 us each time,
    four times a call without tools): no `tools` (or an empty one) and no `tool_choice` object."""
    return not body.get("tools") and not isinstance(body.get("tool_choice"), dict)


def _tool_types(body: dict[str, Any]) -> Iterator[tuple[Where, str, dict[str, Any]]]:
    """Where, the type in lower case and the object of each tool in the body's `tools` that
    names its type, then of the tools its `tool_choice` names (a hosted type there, alone or
    among `allowed_tools`, asks for that tool as listing it does)."""
    tools = body.get("tools")
    for index, tool in enumerate(tools if isinstance(tools, list) else ()):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if isinstance(kind, str):
            yield index, kind.lower(), tool
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        yield from _chosen(choice)


def _chosen(choice: dict[str, Any]) -> Iterator[tuple[Where, str, dict[str, Any]]]:
    """`_tool_types` of a `tool_choice` object: itself (`{"type": "web_search_preview"}`) and
    its allowed tools (chat's `allowed_tools.tools`, the Responses API's `tools`)."""
    kind = choice.get("type")
    if isinstance(kind, str):
        yield "tool_choice", kind.lower(), choice
    nested = choice.get("allowed_tools")
    if isinstance(nested, dict):  # chat's {"type": "allowed_tools", "allowed_tools": {mode, tools}}
        at, listed = "allowed_tools.tools", nested.get("tools")
    else:  # the Responses API's {"type": "allowed_tools", "mode", "tools"}
        at, listed = "tools", choice.get("tools")
    for index, tool in enumerate(listed if isinstance(listed, list) else ()):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if isinstance(kind, str):
            yield f"tool_choice.{at}[{index}]", kind.lower(), tool


def _param(where: Where) -> str:
    return f"tools[{where}]" if isinstance(where, int) else where


def is_hosted(kind: str, tool: dict[str, Any]) -> bool:
    """A tool the upstream runs itself: HOSTED_TOOLS (dated or not), a namespaced type, or a
    shell in a container (an `environment` other than local)."""
    if ":" in kind:
        return True
    kind = _DATED.sub("", kind)
    if kind == "shell":
        environment = tool.get("environment")
        local = isinstance(environment, dict) and str(environment.get("type")).lower() == "local"
        return environment is not None and not local
    return kind in HOSTED_TOOLS


def hosted_tools_in(body: dict[str, Any]) -> Iterator[str]:
    """The param of each tool the upstream runs itself (`is_hosted`), in `tools` or
    `tool_choice`."""
    return (_param(where) for where, kind, tool in _tool_types(body) if is_hosted(kind, tool))


def server_tools_in(body: dict[str, Any]) -> Iterator[str]:
    """The field that allows each Anthropic server tool in `tools` (by its dated type)."""
    for _, kind, _ in _tool_types(body):
        hosted = _DATED.sub("", kind) in HOSTED_TOOLS  # OpenAI's
        if kind.startswith(_SERVER_TOOL_PREFIXES) and not hosted:
            yield next(name for prefix, name in SERVER_TOOLS.items() if kind.startswith(prefix))


# OpenRouter's server tools that run another model inside the call: any OpenRouter model, the
# tool's `parameters.model` or else one the call names; fusion a panel and a judge (by default
# Opus, GPT and Gemini Pro; `parameters.analysis_models`). A key's allowed_models cannot hold them
_MODEL_TOOLS = frozenset({"advisor", "subagent", "fusion"})
_MODEL_PLUGINS = frozenset({"fusion"})  # OpenRouter's plugin that injects openrouter:fusion


def other_model_tools(body: dict[str, Any]) -> Iterator[str]:
    """The param of each tool the upstream runs that runs another model: OpenRouter's advisor,
    subagent and fusion, or one whose definition names a `model` (a hosted image_generation's);
    and of each plugin that does (OpenRouter's fusion, unless `enabled: false`)."""
    plugins = body.get("plugins")
    for index, plugin in enumerate(plugins if isinstance(plugins, list) else ()):
        named = isinstance(plugin, dict) and str(plugin.get("id")).lower() in _MODEL_PLUGINS
        if named and plugin.get("enabled") is not False:
            yield f"plugins[{index}]"
    if lists_no_tools(body):
        return
    for where, kind, tool in _tool_types(body):
        if kind.partition(":")[2] in _MODEL_TOOLS or (is_hosted(kind, tool) and _names_model(tool)):
            yield _param(where)


def _names_model(tool: dict[str, Any]) -> bool:
    parameters = tool.get("parameters")
    return "model" in tool or (isinstance(parameters, dict) and "model" in parameters)
