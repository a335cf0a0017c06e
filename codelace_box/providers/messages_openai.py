"""Messages API in, an `openai` provider out: the reverse of the chat -> Anthropic translation.

The request: `system` becomes a system message; user blocks become content parts (images as data
or http URLs, PDF documents as file parts); `tool_result` blocks become `tool` messages (placed
before the rest of their user turn, as OpenAI wants them right after the calls); assistant
`tool_use` blocks become `tool_calls`; thinking blocks are dropped, but for the unsigned ones
(an OpenAI-compatible upstream's own reasoning) of a turn that called tools, sent back as
`reasoning_content` (DeepSeek's thinking mode refuses a tool loop without it; OpenAI's own API,
which reasons in private, is sent none), and OpenRouter's `reasoning_details` sealed in their
signatures go back to the model that wrote them (providers/reasoning_details.py); tools,
tool_choice, stop_sequences, max_tokens, temperature, top_p, metadata.user_id and tool names
(shortened past OpenAI's 64 characters: messages_openai_names.py), output_config.format (as
response_format) and strict tools (messages_openai_format.py), and thinking (as
reasoning_effort, by its budget or adaptive thinking's output_config.effort, a mid-conversation
system message's per-message one first: messages_openai_effort.py) map to their counterparts.
Deferred tools (`defer_loading`, client-side tool search) are sent once a tool result's
`tool_reference` loads them; mid-conversation tool changes (messages_openai_tool_changes.py)
add and remove tools. A conversation Anthropic compacted goes on from its last
`compaction` block's summary (compaction_history.py); search results, in a user turn or a tool
result, are read as text (search_results.py). The turns themselves (content blocks as content
parts and messages) are messages_openai_turns.py's. Answers and streams go back in
providers/messages_openai_stream.py. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from codelace_box.errors import InvalidRequest
from codelace_box.providers.base import (
    JSON,
    ProviderAdapter,
    StreamTranslator,
    UpstreamRequest,
    UpstreamTarget,
    Usage,
)
from codelace_box.providers.cleared_system import without_cleared
from codelace_box.providers.compaction_history import from_last_compaction
from codelace_box.providers.messages_openai_checks import check_options
from codelace_box.providers.messages_openai_effort import reasoning_effort
from codelace_box.providers.messages_openai_errors import in_anthropic_words
from codelace_box.providers.messages_openai_format import response_format, strict_ready
from codelace_box.providers.messages_openai_names import openai_user, restore_names, shorten_names
from codelace_box.providers.messages_openai_stream import OpenAIToMessagesStream, earlier_call_ids
from codelace_box.providers.messages_openai_tool_changes import (
    changed_tools,
    named_in,
    tool_changes,
)
from codelace_box.providers.messages_openai_turns import (
    assistant_message,
    references,
    system_text,
    text_of,
    user_messages,
)
from codelace_box.providers.messages_openai_whole import message_from_completion
from codelace_box.providers.openai import (
    REASONING_CONTENT,
    OpenAIAdapter,
    cap_field,
    without_message_field,
)
from codelace_box.providers.stop_reasons import stops_of

_OPENAI = OpenAIAdapter(upstream_finish=True)  # stop_of reads TGI's "stop_sequence"


def _bad(message: str) -> InvalidRequest:
    return InvalidRequest(message, code="invalid_request")


def _loaded_tools(messages: list[Any]) -> set[str]:
    """The deferred tools the conversation's tool results have loaded by reference."""
    return {
        name
        for message in messages
        if isinstance(message, dict) and isinstance(message.get("content"), list)
        for block in message["content"]
        if isinstance(block, dict) and block.get("type") == "tool_result"
        for name in references(block.get("content"))
    }


def _tools(tools: Any, loaded: set[str]) -> list[JSON]:
    """OpenAI functions for the tools, but deferred ones not loaded yet: Anthropic keeps them out
    of the model's context until a `tool_reference` loads them."""
    out = []
    for tool in tools if isinstance(tools, list) else []:
        if not isinstance(tool, dict) or tool.get("type") not in (None, "custom"):
            raise _bad("server tools are available on Anthropic models only")
        if tool.get("defer_loading") is True and not named_in(tool.get("name"), loaded):
            continue  # a name that is no text is loaded by no reference
        function = {"name": tool.get("name", ""), "parameters": tool.get("input_schema") or {}}
        if isinstance(tool.get("description"), str):
            function["description"] = tool["description"]
        if tool.get("strict") is True:  # strict tool use: where OpenAI's strict mode takes it
            function["strict"] = strict_ready(function["parameters"])
        out.append({"type": "function", "function": function})
    return out


def _tool_choice(choice: JSON, payload: JSON) -> None:
    kind = choice.get("type")
    if kind == "any":
        payload["tool_choice"] = "required"
    elif kind == "tool":
        payload["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
    elif kind in ("auto", "none"):
        payload["tool_choice"] = kind
    if choice.get("disable_parallel_tool_use") is True:
        payload["parallel_tool_calls"] = False


def _options(body: JSON, messages: list[Any], payload: JSON, call: bool) -> None:
    check_options(body, payload, call)  # 400 for what Anthropic refuses, as it words it
    changes = tool_changes(messages)  # mid-conversation ones, Claude Code's late MCP tools
    offered = changed_tools(body.get("tools"), changes)
    # none (all deferred): no empty array, a 400 at OpenAI and DeepSeek; nor tool_choice alone
    if tools := _tools(offered, _loaded_tools(messages) | changes.shown):
        payload["tools"] = tools
        if isinstance(body.get("tool_choice"), dict):
            _tool_choice(body["tool_choice"], payload)
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
        payload["user"] = openai_user(metadata["user_id"])
    effort = reasoning_effort(body.get("thinking"), body.get("output_config"), messages)
    if effort is not None:
        payload["reasoning_effort"] = effort
    if (form := response_format(body)) is not None:
        payload["response_format"] = form


def chat_body(body: JSON, max_tokens: int, model: str = "", *, call: bool = True) -> JSON:
    """The Chat Completions body for a Messages body; `model`: the catalog model it goes to
    (its reasoning details go back to it). Not a `call`: a count_tokens body (count_tokens.py)."""
    messages: list[JSON] = []
    system = system_text(body.get("system"))
    if system:
        messages.append({"role": "system", "content": system})
    sent = without_cleared(body.get("messages") or [])  # less system messages a user ended
    for message in from_last_compaction(sent):
        role = message.get("role")
        if role == "assistant":
            messages.append(assistant_message(message.get("content"), model))
        elif role == "system":  # a mid-conversation system message (Claude Code sends them)
            text = text_of(message.get("content"))  # none: its per-message effort alone
            if text:
                messages.append({"role": "system", "content": text})
        elif role == "user":
            messages.extend(user_messages(message.get("content")))
        else:  # Anthropic's 400 too: a `tool` or `developer` message is not the user's words
            raise _bad(f"messages: role {role!r} is not user or assistant")
    payload: JSON = {"model": body.get("model"), "messages": messages, "max_tokens": max_tokens}
    if body.get("stream"):
        payload["stream"] = True
    _options(body, sent if isinstance(sent, list) else [], payload, call)
    return payload


class MessagesToOpenAI(ProviderAdapter):
    """A Messages body to a Chat Completions upstream, and its answers back."""

    kind = "openai"
    default_base_url = OpenAIAdapter.default_base_url

    def __init__(self, model: str = "") -> None:
        self.model = model  # the catalog model called (its reasoning details go back to it)
        self.earlier: frozenset[str] = frozenset()  # the call ids the request already holds
        self.stops: tuple[str, ...] = ()  # the request's stop sequences
        self.left_out: set[str] = set()  # hints the upstream refused
        self.cap = 0  # the output cap sent
        self.full_names: dict[str, str] = {}  # tool names shortened for OpenAI -> full names

    def check_request(
        self, body: JSON, upstream_model: str = "", *, default_max_tokens: int | None = None
    ) -> None:
        """400 for what cannot be translated, before any money is held or byte sent."""
        chat_body(body, 1)

    def key_check_request(self, base_url: str, api_key: str) -> tuple[str, dict[str, str]]:
        """The upstream speaks Chat Completions: its key is checked as an openai one."""
        return OpenAIAdapter().key_check_request(base_url, api_key)

    def build_request(self, body: JSON, target: UpstreamTarget) -> UpstreamRequest:
        """The Chat Completions request (the OpenAI adapter's headers and cap field)."""
        self.cap = cap = target.default_max_tokens or int(body.get("max_tokens") or 1)
        payload, self.earlier = chat_body(body, cap, self.model), earlier_call_ids(body)
        self.stops = stops_of(body)
        self.full_names.update(shorten_names(payload))  # (the stream translator reads it)
        if REASONING_CONTENT in self.left_out:
            payload["messages"] = without_message_field(payload["messages"], REASONING_CONTENT)
        base = target.base_url or self.default_base_url
        if cap_field(base, target.refused_fields) == "max_completion_tokens":
            payload["max_completion_tokens"] = payload.pop("max_tokens")
        if "api.openai.com" in base:
            for message in payload["messages"]:  # fields OpenAI does not take
                message.pop("reasoning_content", None)
                message.pop("reasoning_details", None)
                for call in message.get("tool_calls") or []:
                    call.pop("extra_content", None)
        return _OPENAI.build_request(payload, replace(target, default_max_tokens=None))

    def parse_response(self, payload: JSON, public_model: str) -> tuple[JSON, Usage]:
        """An Anthropic `message` for a chat completion."""
        completion, usage = _OPENAI.parse_response(payload, public_model)
        sealer = self.model or public_model
        answer = message_from_completion(
            completion, usage, public_model, sealer, self.earlier, self.stops
        )
        restore_names(answer["content"], self.full_names)
        return answer, usage

    def usage_of(self, raw: Any) -> Usage | None:
        """The upstream's `usage` object, as the OpenAI adapter reads it (an answer too large
        to relay is charged it: gateway/oversized.py)."""
        return _OPENAI.usage_of(raw)

    def error_message(self, status: int, payload: bytes) -> str:
        """The OpenAI-compatible upstream's message; a context overflow or a cap past the
        model's output limit in Anthropic's words (the ones Claude Code compacts or lowers
        max_tokens on: messages_openai_errors.py)."""
        return in_anthropic_words(status, payload, _OPENAI.error_message(status, payload), self.cap)

    def wants_payment(self, status: int, message: str) -> bool:
        """As the OpenAI adapter decides."""
        return _OPENAI.wants_payment(status, message)

    def without_hints(self, body: JSON, names: set[str]) -> JSON:
        """`user` is metadata.user_id's translation (a server may refuse it: Mistral's 422
        "extra_forbidden"): the body without its metadata then; `reasoning_content` is left
        out of the messages built."""
        self.left_out |= names
        kept = {k: v for k, v in body.items() if not ("user" in names and k == "metadata")}
        return super().without_hints(kept, names)

    def without_effort(self, body: JSON) -> JSON:
        """The Messages body with thinking disabled: its translation sends no
        reasoning_effort."""
        return {**body, "thinking": {"type": "disabled"}}

    def stream_translator(self, public_model: str) -> StreamTranslator:
        """OpenAI chunks in, Anthropic events out."""
        inner = _OPENAI.stream_translator(public_model)
        translator = OpenAIToMessagesStream(
            inner, public_model, self.model or public_model, self.earlier, self.stops
        )
        translator.full_names = self.full_names
        return translator
