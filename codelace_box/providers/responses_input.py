"""Responses API `input` (a string or a list of items) -> Chat Completions `messages` (pure code).

What the items look like is taken from OpenAI's Responses reference and from what Codex CLI
(codex-rs, `ResponseItem`) actually sends and hands back:

- `message` items (the `type` may be left out): roles user, system, developer and assistant;
  content a string or parts (`input_text`, `input_image` with an `image_url` (URL or data URL),
  `input_file` with `file_data`, and on assistant turns `output_text` / `refusal`). Developer
  messages become system messages (chat upstreams other than OpenAI rarely know the role).
- `function_call` {call_id, name, arguments} and `custom_tool_call` {call_id, name, input}: the
  tool calls of an assistant turn. Consecutive calls, and the assistant text before them, are one
  chat assistant message (parallel calls must share one message, or the upstream refuses the tool
  results that follow). A custom (freeform) tool is offered to chat upstreams as a function with
  one string parameter `input` (see responses_request), so its call carries `{"input": ...}`;
  a call with a `namespace` names the chat function namespace + name. To Anthropic, arguments
  that are no JSON object (a call cut at max_tokens) go as `{}` (tool_use input is an object).
- `function_call_output` / `custom_tool_call_output` {call_id, output}: a `tool` message. An
  output may be a string or a list of `input_text` / `input_image` parts (Codex's view_image);
  chat tool messages take text only, so images follow as a user message after the tool results.
- `reasoning` items handed back {summary, content, encrypted_content}: chat upstreams cannot take
  them and they are dropped, except the ones this box produced: from a provider's signed thinking
  (Anthropic), whose `encrypted_content` carries the signed blocks, given back as the next
  assistant message's `thinking_blocks` when the upstream is Anthropic (`keep_thinking`); and
  from a chat model's `reasoning_content` (DeepSeek, Kimi, vLLM reasoning parsers), whose id
  names that model (`chat_reasoning_id`): when the request goes to that same model, its text is
  given back as the next assistant message's `reasoning_content` (DeepSeek's thinking mode
  refuses a tool-call turn without it; other models never see it, some refuse it); OpenRouter's
  reasoning details sealed for that model, as the `reasoning_details` of its turn's message.
- `compaction_trigger` and the box's `compaction` items: user messages (responses_compaction);
  `additional_tools` (Codex's code mode): tools (chat_tools); `configuration_update`: nothing.
  Others' compaction items, items needing server state or hosted tools (...) are a 400.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from typing import Any

from codelace_box.errors import InvalidRequest
from codelace_box.jsonwire import NOT_JSON, loads
from codelace_box.providers.anthropic_messages import CALLS_BEFORE
from codelace_box.providers.reasoning_details import unseal
from codelace_box.providers.responses_compaction import (
    COMPACTION,
    TRIGGER,
    summary_message,
    summary_request,
)
from codelace_box.providers.responses_parts import (
    assistant_text,
    output_parts,
    system_text,
    user_content,
)
from codelace_box.providers.responses_tools import ADDITIONAL_TOOLS, Declared, chat_name
from codelace_box.providers.thought_signature import split_id, with_signature

JSON = dict[str, Any]

THINKING_PREFIX = "codelace-thinking-v2:"  # our own encrypted_content: signed thinking blocks
LEGACY_THINKING_PREFIX = "codelace-thinking-v1:"  # the same without the model (before v2)
THINKING_PREFIXES = (THINKING_PREFIX, LEGACY_THINKING_PREFIX)
CHAT_REASONING_PREFIX = "rs_cr"  # not hex: no OpenAI reasoning id starts so
_THINKING_TYPES = ("thinking", "redacted_thinking")
_CALL_TYPES = ("function_call", "custom_tool_call")
_OUTPUT_TYPES = ("function_call_output", "custom_tool_call_output")
_ROLES = {"user": "user", "system": "system", "developer": "system", "assistant": "assistant"}


def encode_thinking(blocks: list[JSON], model: str) -> str:
    """`encrypted_content` for a provider's signed thinking blocks of the catalog `model`
    (opaque to the client; the tag names the model, as Anthropic signs for one model)."""
    raw = json.dumps(blocks, separators=(",", ":")).encode()
    return f"{THINKING_PREFIX}{_model_tag(model)}:{base64.urlsafe_b64encode(raw).decode()}"


def decode_thinking(value: Any, model: str) -> list[JSON]:
    """The thinking blocks of an `encrypted_content` this box produced for `model`; [] for
    anything else (another model's: Anthropic refuses a thinking block signed for another model,
    400 "Invalid `signature` in `thinking` block"; OpenAI's own encrypted reasoning; tampered or
    foreign values). A value from before the tag (v1) names no model and is taken as it is."""
    if not isinstance(value, str) or not value.startswith(THINKING_PREFIXES):
        return []
    payload = value[value.index(":") + 1 :]  # after the prefix, whichever
    if value.startswith(THINKING_PREFIX):
        tag, _, payload = payload.partition(":")
        if tag != _model_tag(model):
            return []
    try:
        blocks = loads(base64.urlsafe_b64decode(payload))
    except NOT_JSON:
        return []
    if not isinstance(blocks, list):
        return []
    return [b for b in blocks if isinstance(b, dict) and b.get("type") in _THINKING_TYPES]


def chat_reasoning_id(model: str) -> str:
    """The id of a reasoning item made of a chat model's `reasoning_content`: `rs_` and 48
    characters, as OpenAI's, which name the model (a hash of its catalog id) it came from."""
    return CHAT_REASONING_PREFIX + _model_tag(model) + secrets.token_hex(19)


def _model_tag(model: str) -> str:
    return hashlib.sha256(model.encode()).hexdigest()[:8]


def chat_reasoning(item: JSON, model: str) -> str:
    """The reasoning text of a handed-back reasoning item this box made of `model`'s own
    `reasoning_content`; "" for any other item."""
    item_id = item.get("id")
    if not model or not isinstance(item_id, str):
        return ""
    if not item_id.startswith(CHAT_REASONING_PREFIX + _model_tag(model)):
        return ""
    content = item.get("content")
    parts = [p for p in content if isinstance(p, dict)] if isinstance(content, list) else []
    texts = [p.get("text") for p in parts if p.get("type") == "reasoning_text"]
    return "".join(text for text in texts if isinstance(text, str))


def input_messages(value: Any, *, keep_thinking: bool = False, model: str = "",
                   declared: list[Declared] | None = None) -> list[JSON]:  # fmt: skip
    """Chat messages for a Responses `input` (instructions: the caller's); `model`: the catalog
    model it goes to (its reasoning goes back to it); `declared`: gets its additional_tools."""
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if not isinstance(value, list):
        raise InvalidRequest("input must be a string or a list of items", param="input")
    builder = _Builder(keep_thinking, model, [] if declared is None else declared)
    for i, item in enumerate(value):
        builder.add(item, f"input[{i}]")
    builder.flush_images()
    return builder.messages


class _Builder:
    """Accumulates chat messages, merging what chat needs in one assistant message."""

    def __init__(self, keep_thinking: bool, model: str, declared: list[Declared]) -> None:
        self.messages: list[JSON] = []
        self.declared = declared  # the additional_tools items (where, item): chat_tools'
        self.keep_thinking = keep_thinking
        self.model = model
        self.reasoning = ""  # a chat model's own reasoning handed back, for the next assistant
        self.images: list[JSON] = []  # image parts of tool outputs, sent after the tool results
        self.thinking: list[JSON] = []  # handed-back thinking for the next assistant turn
        self.details: list[JSON] = []  # OpenRouter's reasoning details, likewise

    def add(self, item: Any, where: str) -> None:
        if not isinstance(item, dict):
            raise InvalidRequest(f"{where} must be an object", param=where)
        kind = item.get("type", "message" if "role" in item else None)
        if kind in _OUTPUT_TYPES:
            self._tool_output(item, where)
            return
        self.flush_images()
        if kind == "message":
            self._message(item, where)
        elif kind in _CALL_TYPES:
            self._call(item, kind, where)
        elif kind == TRIGGER:  # Codex's remote compaction (responses_compaction)
            self.messages.append(summary_request())
        elif kind == COMPACTION:
            self.messages.append(summary_message(item, where))
        elif kind == "reasoning":
            if self.keep_thinking:
                self.thinking += decode_thinking(item.get("encrypted_content"), self.model)
            else:
                self.reasoning += chat_reasoning(item, self.model)
                self._details(unseal(item.get("encrypted_content"), self.model))
        elif kind == ADDITIONAL_TOOLS:  # (its tools are the request's: responses_tools)
            self.declared.append((where, item))
        elif kind != "configuration_update":  # (Codex's: the request's own fields say as much)
            raise InvalidRequest(
                f"{where}: input items of type {kind!r} are not supported (the box is stateless "
                "and runs no hosted tools; send messages, function calls and their outputs)",
                param=f"{where}.type",
            )

    def _message(self, item: JSON, where: str) -> None:
        given = item.get("role")
        role = _ROLES.get(given) if isinstance(given, str) else None
        if role is None:
            raise InvalidRequest(
                f"{where}.role must be user, system, developer or assistant", param=f"{where}.role"
            )
        content = item.get("content")
        if role == "assistant":
            text = assistant_text(content, where)
            last = self.messages[-1] if self.messages else None
            if last is not None and last["role"] == "assistant":  # text after its calls too:
                last["content"] = (last.get("content") or "") + text  # their results follow
                self._attach_thinking(last)
            else:
                self._new_assistant(text)
        elif role == "system":
            self.messages.append({"role": "system", "content": system_text(content, where)})
        else:
            self.messages.append({"role": "user", "content": user_content(content, where)})

    def _details(self, details: list[JSON]) -> None:
        """Reasoning details handed back: for the next assistant turn, or for the turn whose
        text or calls they follow (details that came while the text or a call streamed)."""
        last = self.messages[-1] if self.messages else None
        if details and last is not None and last["role"] == "assistant":
            last.setdefault("reasoning_details", []).extend(details)
        else:
            self.details += details

    def _new_assistant(self, text: str | None) -> JSON:
        message: JSON = {"role": "assistant", "content": text}
        self.messages.append(message)
        self._attach_thinking(message)
        return message

    def _attach_thinking(self, message: JSON) -> None:
        if self.thinking:  # thinking between calls keeps its place (anthropic_messages)
            at = len(message.get("tool_calls") or ())
            blocks = [{**b, CALLS_BEFORE: at} if at else b for b in self.thinking]
            message.setdefault("thinking_blocks", []).extend(blocks)
            self.thinking = []
        if self.reasoning:
            message["reasoning_content"] = message.get("reasoning_content", "") + self.reasoning
            self.reasoning = ""
        if self.details:
            message.setdefault("reasoning_details", []).extend(self.details)
            self.details = []

    def _call(self, item: JSON, kind: str, where: str) -> None:
        call_id, name = item.get("call_id"), item.get("name")
        if not isinstance(call_id, str) or not call_id:
            raise InvalidRequest(f"{where}.call_id is required", param=f"{where}.call_id")
        if not isinstance(name, str) or not name:
            raise InvalidRequest(f"{where}.name is required", param=f"{where}.name")
        if kind == "custom_tool_call":
            raw = item.get("input")
            if not isinstance(raw, str):
                raise InvalidRequest(f"{where}.input must be a string", param=f"{where}.input")
            arguments = json.dumps({"input": raw}, ensure_ascii=False)
        else:
            given = item.get("arguments")
            if not isinstance(given, str):
                raise InvalidRequest(f"{where}.arguments must be a string", param=where)
            arguments = _handed_back_arguments(given) if self.keep_thinking else given
        last = self.messages[-1] if self.messages else None
        message = last if last is not None and last["role"] == "assistant" else None
        if message is None:
            message = self._new_assistant(None)
        else:
            self._attach_thinking(message)
        namespace = item.get("namespace")
        if isinstance(namespace, str):
            name = chat_name(namespace, name)  # the chat name of a namespace's tool
        call_id, signature = split_id(call_id)  # Gemini's thought signature goes back with it
        call = {
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": arguments},
        }
        message.setdefault("tool_calls", []).append(with_signature(call, signature))

    def _tool_output(self, item: JSON, where: str) -> None:
        call_id = item.get("call_id")
        if not isinstance(call_id, str) or not call_id:
            raise InvalidRequest(f"{where}.call_id is required", param=f"{where}.call_id")
        output = item.get("output")
        if isinstance(output, dict) and isinstance(output.get("content"), str):
            output = output["content"]  # older Codex: {content, success} for a failed call
        if isinstance(output, str):
            text = output
        elif isinstance(output, list):
            texts, images = output_parts(output, where)
            text = "\n".join(texts)
            self.images += images
        else:
            raise InvalidRequest(
                f"{where}.output must be a string or a list of parts", param=f"{where}.output"
            )
        self.messages.append(
            {"role": "tool", "tool_call_id": split_id(call_id)[0], "content": text}
        )

    def flush_images(self) -> None:
        """Images returned by tools, as one user message after the tool results."""
        if self.images:
            self.messages.append({"role": "user", "content": self.images})
            self.images = []


def _handed_back_arguments(given: str) -> str:
    """A call's arguments handed back to an Anthropic upstream, whose tool_use input must be an
    object: arguments that are no JSON object (a call cut at max_tokens in its arguments, which
    the box gave as an incomplete item; a model's malformed call) go as `{}`, as OpenAI's
    Responses API takes any string there; the call's output says what became of it."""
    try:
        parsed = loads(given) if given else {}
    except NOT_JSON:
        return "{}"
    return given if isinstance(parsed, dict) else "{}"
