"""A Responses API request body -> a Chat Completions request body, checked first (pure code).

The box is stateless: `store` is taken as false and anything that needs a stored response or
a hosted tool is a 400 naming the field. The chat body this gives goes through the provider
adapters unchanged (openai as is, anthropic via anthropic_request), so every check and billed
field rule of the chat path applies (a `service_tier` that bills more, or OpenRouter's `plugins`,
is passed on to be refused there unless the operator allowed it for the provider).

What Codex CLI sends (codex-rs `ResponsesApiRequest`, HTTP + SSE): model, instructions, input,
tools, tool_choice "auto", parallel_tool_calls, reasoning {effort, summary}, store false,
stream true, include ["reasoning.encrypted_content"] when reasoning is on, prompt_cache_key (its
thread id), text {verbosity, format: json_schema "codex_output_schema" strict}, and, depending
on the version, service_tier and client_metadata. Its tools are `function` tools (shell,
exec_command, update_plan, view_image, apply_patch for some models), `namespace` (its MCP
tools: a group of functions; chat gets them named namespace + name, as Codex names them, and
their calls come back with `namespace` set), `custom` (freeform: apply_patch on GPT-5 family
models; chat gets a function taking one string `input`) and, by default (its web_search mode
"cached", "live" under full access), a hosted `web_search` tool, which chat upstreams cannot
run: it is dropped (IGNORED_TOOL_TYPES) so that Codex works without `web_search = "disabled"`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from codelace_box.errors import InvalidRequest
from codelace_box.providers.responses_compaction import asks_compaction
from codelace_box.providers.responses_input import input_messages
from codelace_box.providers.responses_tools import (
    IGNORED_TOOL_TYPES,
    ChatTools,
    Declared,
    allowed_tools,
    chat_tool_choice,
    chat_tools,
)

JSON = dict[str, Any]

# Accepted and ignored (they change neither the answer nor its price); the README lists them.
IGNORED_FIELDS: dict[str, str] = {
    "include": "extra output the box does not produce; reasoning.encrypted_content is honoured "
    "where the provider signs its reasoning (Anthropic, OpenRouter's reasoning_details)",
    "store": "the box keeps no responses: every response is unstored, whatever the value",
    "prompt_cache_retention": "a hint for the provider's prompt cache",
    "metadata": "echoed in the response; sent only to a provider added with --responses-api",
    "client_metadata": "Codex's client and session ids",
    "stream_options": "stream obfuscation padding is never added",
    "text.verbosity": "a style hint most chat upstreams lack",
    "verbosity": "as text.verbosity (the openai SDK's responses.parse sends it at the top)",
    "reasoning.summary": "the box writes no summaries of its own: auto, concise or detailed "
    "gives Claude's thinking (summarized by Claude 4 and later) as the summary; other reasoning "
    "is relayed as raw content where the provider gives it",
    "reasoning.generate_summary": "as reasoning.summary",
    "reasoning.context": "which turns' reasoning the model keeps (Codex's code mode sends "
    '"all_turns"); reasoning handed back is passed on as above',
    "truncation": 'only "disabled" (the default) is accepted',
}
# Fields that need stored state or features the box does not have: a 400 with the reason.
REFUSED_FIELDS: dict[str, str] = {
    "previous_response_id": "the box is stateless: send the whole conversation in input",
    "conversation": "the box is stateless: send the whole conversation in input",
    "prompt": "stored prompt templates are not supported: send instructions and input",
    "background": "background responses are not supported (the box keeps no responses)",
    "max_tool_calls": "max_tool_calls applies to hosted tools, which the box does not run",
    "top_logprobs": "logprobs are not available through the Responses API here",
    "context_management": "server-side context management is not supported",
}
# Fields that bill beyond the token prices (providers/billed_fields.py): passed on, for the chat
# path to refuse unless the operator allowed them for the provider (then they reach it).
BILLED_BODY_FIELDS = (
    "models", "route", "fallbacks", "plugins", "provider", "transforms", "web_search_options",
)  # fmt: skip
# Passed on to the chat body (prompt_cache_key and safety_identifier are hints an upstream that
# does not know them may refuse: left out there, gateway/hints.py; Anthropic ignores the first).
PASSED_FIELDS = (
    "temperature", "top_p", "user", "safety_identifier", "service_tier", "prompt_cache_key",
    *BILLED_BODY_FIELDS,
)  # fmt: skip
KNOWN_FIELDS = frozenset(
    {"model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls", "text"}
    | {"reasoning", "max_output_tokens", "stream", *PASSED_FIELDS, *REFUSED_FIELDS}
    | {name for name in IGNORED_FIELDS if "." not in name}
)
MAX_TOKENS = 2**31 - 1  # OpenAI's ceiling (a 32-bit integer), as chat's max_tokens
REASONING_KEYS = ("effort", "summary", "generate_summary", "context")
SUMMARIES = ("auto", "concise", "detailed")  # reasoning.summary values that ask for one
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")  # max: GPT-5.6 Sol


@dataclass(frozen=True)
class ResponsesContext:
    """What the answer's translation needs to know about the request."""

    custom_tools: frozenset[str] = frozenset()  # tools whose calls are custom_tool_call items
    model: str = ""  # the catalog model answering (names the reasoning items it gives)
    encrypted_reasoning: bool = False  # the client asked for reasoning.encrypted_content
    echo: JSON = field(default_factory=dict)  # request fields the response object repeats
    namespaced: dict[str, tuple[str, str]] = field(default_factory=dict)  # chat name -> parts
    compaction: bool = False  # the input ends with a compaction trigger (responses_compaction)
    summarized: bool = False  # Claude's thinking goes out as the summary (reasoning.summary)


@dataclass(frozen=True)
class ChatRequest:
    """The Chat Completions body for a Responses request, and the context of its answer."""

    body: JSON
    context: ResponsesContext


def translate_request(body: Any, *, keep_thinking: bool = False, model: str = "") -> ChatRequest:
    """Check a Responses request and translate it; InvalidRequest (400) names what is wrong.

    `keep_thinking`: the upstream is Anthropic, so signed thinking handed back in reasoning
    items is passed on; `model`: the catalog model it goes to, whose own reasoning handed back
    is passed on (see responses_input)."""
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    _check_fields(body)
    declared: list[Declared] = []  # the additional_tools items of the input
    messages = _messages(body, keep_thinking, model, declared)
    tools = chat_tools(body.get("tools"), declared)
    chat: JSON = {"model": body.get("model"), "messages": messages}
    if tools.tools:
        chat["tools"] = tools.tools
        names = {t["function"]["name"] for t in tools.tools}
        choice = body.get("tool_choice")
        if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
            choice, allowed = allowed_tools(choice, names)
            chat["tools"] = [t for t in tools.tools if t["function"]["name"] in allowed]
        choice = chat_tool_choice(choice, names)  # checked even where a compaction drops it
        choice = "none" if asks_compaction(body) else choice
        if choice is not None:
            chat["tool_choice"] = choice
        if isinstance(body.get("parallel_tool_calls"), bool):
            chat["parallel_tool_calls"] = body["parallel_tool_calls"]
    elif body.get("tool_choice") not in (None, "auto", "none"):
        _refuse_choice_without_tools(body["tool_choice"], body.get("tools"))
    _add_options(chat, body)
    return ChatRequest(chat, _context(body, tools, model, keep_thinking))


def _refuse_choice_without_tools(choice: Any, sent: Any) -> None:
    """The 400 of a tool_choice other than auto/none while no tool is offered: a value no
    request takes is told what is taken, a named tool that it is not in tools, the rest
    (required, allowed_tools) that there is no tool to call: `tools` is empty, or `sent` held
    only hosted tools the box drops (Codex's web_search: it was told "tools is empty")."""
    if choice != "required" and not (
        isinstance(choice, dict) and choice.get("type") == "allowed_tools"
    ):
        chat_tool_choice(choice, set())
    listed = sent if isinstance(sent, list) else []
    dropped = [
        t["type"] for t in listed if isinstance(t, dict) and t.get("type") in IGNORED_TOOL_TYPES
    ]
    where = "tools is empty"
    if dropped:
        verb = "is" if len(dropped) == 1 else "are"
        where = (f"tools has no tool the box offers a model ({', '.join(dropped)} {verb} "
                 "dropped: the box runs no hosted tools)")  # fmt: skip
    raise InvalidRequest(f"tool_choice asks for a tool call, but {where}", param="tool_choice")


def _check_fields(body: JSON) -> None:
    for name in body:
        if name not in KNOWN_FIELDS:
            raise InvalidRequest(f"{name} is not supported by the box's Responses API", param=name)
    for name, reason in REFUSED_FIELDS.items():
        if body.get(name) not in (None, False, 0):
            raise InvalidRequest(f"{name} is not supported: {reason}", param=name)
    if body.get("truncation") not in (None, "disabled"):
        raise InvalidRequest(
            'truncation "auto" is not supported: the box never drops input', param="truncation"
        )
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequest("model is required", param="model")
    if body.get("stream") is not None and not isinstance(body["stream"], bool):  # 1: a number
        raise InvalidRequest("stream must be a boolean", param="stream")


def _messages(body: JSON, keep_thinking: bool, model: str, declared: list[Declared]) -> list[JSON]:
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise InvalidRequest("instructions must be a string", param="instructions")
    if body.get("input") is None:
        raise InvalidRequest("input is required", param="input")
    messages = input_messages(body["input"], keep_thinking=keep_thinking, model=model,
                              declared=declared)  # fmt: skip
    if instructions:
        messages.insert(0, {"role": "system", "content": instructions})
    if not any(m["role"] != "system" for m in messages):
        raise InvalidRequest("input needs at least one message", param="input")
    return messages


# -- options --------------------------------------------------------------------------------


def _add_options(chat: JSON, body: JSON) -> None:
    for name in PASSED_FIELDS:
        if body.get(name) is not None:
            chat[name] = body[name]
    cap = body.get("max_output_tokens")
    if cap is not None:
        if isinstance(cap, bool) or not isinstance(cap, int) or not 0 < cap <= MAX_TOKENS:
            raise InvalidRequest(
                f"max_output_tokens must be a positive integer, at most {MAX_TOKENS}",
                param="max_output_tokens",
            )
        chat["max_completion_tokens"] = cap
    effort = _reasoning_effort(body.get("reasoning"))
    if effort is not None:
        chat["reasoning_effort"] = effort
    response_format = _response_format(body.get("text"))
    if response_format is not None:
        chat["response_format"] = response_format
    if body.get("stream"):
        chat["stream"] = True


def _check_keys(value: Any, name: str, allowed: tuple[str, ...]) -> JSON:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidRequest(f"{name} must be an object", param=name)
    for key in value:
        if key not in allowed:
            raise InvalidRequest(f"{name}.{key} is not supported", param=f"{name}.{key}")
    return value


def _reasoning_effort(reasoning: Any) -> str | None:
    options = _check_keys(reasoning, "reasoning", REASONING_KEYS)
    effort = options.get("effort")
    if effort is not None and effort not in EFFORTS:
        raise InvalidRequest(
            f"reasoning.effort must be one of {', '.join(EFFORTS)}", param="reasoning.effort"
        )
    return effort


def _response_format(text: Any) -> JSON | None:
    form = _check_keys(text, "text", ("format", "verbosity")).get("format")
    if form is None:
        return None
    if not isinstance(form, dict):
        raise InvalidRequest("text.format must be an object", param="text.format")
    kind = form.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind != "json_schema":
        raise InvalidRequest(
            "text.format.type must be text, json_object or json_schema", param="text.format.type"
        )
    schema = form.get("schema")
    if not isinstance(schema, dict):
        raise InvalidRequest("text.format.schema must be an object", param="text.format.schema")
    spec: JSON = {"name": form.get("name") or "response", "schema": schema}
    for key in ("strict", "description"):
        if form.get(key) is not None:
            spec[key] = form[key]
    return {"type": "json_schema", "json_schema": spec}


def _context(body: JSON, tools: ChatTools, model: str, claude: bool) -> ResponsesContext:
    """The answer's context; `claude`: the upstream is Anthropic, whose thinking (summarized
    by Claude 4 and later) goes out as the reasoning summary when the request asks one."""
    include = body.get("include")
    encrypted = isinstance(include, list) and "reasoning.encrypted_content" in include
    declared = [t for t in body.get("tools") or () if t.get("type") not in IGNORED_TOOL_TYPES]
    reasoning = body.get("reasoning") or {}
    text = body.get("text") or {}
    echo: JSON = {
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "metadata": body.get("metadata") if isinstance(body.get("metadata"), dict) else {},
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "store": False,
        "temperature": body.get("temperature"),
        "text": {"format": text.get("format") or {"type": "text"}},
        "tool_choice": body.get("tool_choice") or "auto",
        "tools": declared,
        "top_p": body.get("top_p"),
        "truncation": "disabled",
    }
    for name in ("user", "safety_identifier", "prompt_cache_key"):
        if body.get(name) is not None:
            echo[name] = body[name]
    custom = frozenset(tools.custom)
    compaction = asks_compaction(body)
    summarized = claude and _asks_summary(reasoning)
    return ResponsesContext(custom, model, encrypted, echo, dict(tools.namespaced), compaction,
                            summarized)  # fmt: skip


def _asks_summary(reasoning: JSON) -> bool:
    """Whether `reasoning.summary` (or its older name `generate_summary`) asks for one."""
    return (reasoning.get("summary") or reasoning.get("generate_summary")) in SUMMARIES
