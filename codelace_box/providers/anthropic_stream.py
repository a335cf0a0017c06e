"""Anthropic Messages API stream events -> OpenAI `chat.completion.chunk` dicts, as they arrive.

message_start gives the first chunk (role) and the input tokens; text_delta, thinking_delta and
input_json_delta become content, reasoning_content (and OpenRouter's `reasoning` for a client
that asked in OpenRouter's way; nothing for one that excluded it) and tool call argument chunks
(a tool call is announced with index, id and name when its block starts, and a call whose input
never streamed gets it whole when its block stops); message_delta gives the finish chunk
and the final usage; message_stop ends the stream; ping is ignored; error raises.
"""

from __future__ import annotations

import json
import time
from typing import Any

from codelace_box.jsonwire import NOT_JSON, loads
from codelace_box.providers.anthropic_response import (
    completion_id,
    finish_reason,
    input_tokens,
    refusal_words,
    text_of,
    usage_from,
)
from codelace_box.providers.anthropic_thinking import (
    REPLY_DEFAULT,
    REPLY_EXCLUDED,
    REPLY_OPENROUTER,
)
from codelace_box.providers.base import (
    SSEEvent,
    StreamTranslator,
    UpstreamStreamError,
    is_blank,
    is_done,
)

JSON = dict[str, Any]


def event_data(event: SSEEvent) -> JSON | None:
    """An event's JSON object; None for a `[DONE]` line (some compatible servers end with one)
    and for empty data (it carries nothing: base.py is_blank). Anything else that is not a JSON
    object is a broken upstream (UpstreamStreamError): dropped without a word, it would leave a
    hole in the text relayed as a complete answer."""
    if is_done(event.data):
        return None
    try:
        data = loads(event.data)
    except NOT_JSON:
        if is_blank(event):
            return None
        data = None
    if not isinstance(data, dict):
        raise UpstreamStreamError("the upstream sent a malformed stream event")
    return data


def _obj(data: JSON, key: str) -> JSON:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _str(data: JSON, key: str, default: str) -> str:
    value = data.get(key)
    return value if isinstance(value, str) else default


def _merge_counts(start: JSON, final: JSON) -> JSON:
    """The counts so far (message_start's usage, updated by the message_delta events before)
    updated by a message_delta's cumulative counts (which never shrink: a 0 there, as some
    Anthropic-compatible upstreams send, keeps the earlier count; a count left out, as a later
    of several message_delta events may, keeps it too, as the anthropic SDK's final message
    does)."""
    merged = dict(start)
    for key, value in final.items():
        before = merged.get(key)
        if isinstance(value, int) and isinstance(before, int):
            merged[key] = max(value, before)
        else:
            merged[key] = value
    return merged


class AnthropicStreamTranslator(StreamTranslator):
    """Translates one Anthropic stream; keeps per-block state (tool indexes, thinking text)."""

    def __init__(self, public_model: str, reply: str = REPLY_DEFAULT) -> None:
        super().__init__()
        self.public_model = public_model
        self.reply = reply  # how the thinking is shown (anthropic_thinking.REPLY_*)
        self.id = completion_id(None)
        self.created = int(time.time())
        self.tool_index: dict[int, int] = {}  # Anthropic block index -> OpenAI tool call index
        self.tool_calls = 0  # tool calls begun (a block index an upstream repeats begins one too)
        self.tool_input: dict[int, Any] = {}  # Anthropic block index -> input while none streamed
        self.thinking: dict[int, str] = {}  # Anthropic block index -> thinking text so far
        self.thinking_blocks_sent = 0
        self.counts: JSON = {}  # message_start's usage, updated by each message_delta's
        self.finish_sent = False

    def feed(self, event: SSEEvent) -> list[JSON]:
        """Chunks for one event (most events give zero or one)."""
        data = event_data(event)
        if data is None:
            return []
        kind = data.get("type") or event.event
        handler = _HANDLERS.get(kind) if isinstance(kind, str) else None
        return handler(self, data) if handler else []

    def _chunk(self, delta: JSON, finish: str | None = None) -> JSON:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.public_model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            # as OpenAI's chunks before the usage one; dropped unless the client asked for usage
            "usage": None,
        }

    def _on_message_start(self, data: JSON) -> list[JSON]:
        message = _obj(data, "message")
        self.id = completion_id(message.get("id"))
        usage = message.get("usage")
        self.counts = usage if isinstance(usage, dict) else {}
        self.input_tokens_seen = input_tokens(self.counts)
        self.usage_seen = usage_from(self.counts)
        return [self._chunk({"role": "assistant", "content": ""})]

    def _on_block_start(self, data: JSON) -> list[JSON]:
        self.began = True
        block = data.get("content_block")
        index = data.get("index")
        if not isinstance(block, dict) or not isinstance(index, int):
            return []
        kind = block.get("type")
        if kind == "tool_use":
            tool_index = self.tool_index[index] = self.tool_calls
            self.tool_calls += 1
            self.tool_input[index] = block.get("input")
            call = {
                "index": tool_index,
                "id": block.get("id", ""),
                "type": "function",
                "function": {"name": block.get("name", ""), "arguments": ""},
            }
            return [self._chunk({"tool_calls": [call]})]
        if kind == "thinking":
            self.thinking[index] = text_of(block, "thinking")
            return self._reasoning(self.thinking[index])
        if kind == "text":
            return self._text(text_of(block, "text"))
        if kind == "redacted_thinking" and block.get("data"):
            return self._thinking_block({"type": "redacted_thinking", "data": block["data"]})
        return []

    def _on_block_delta(self, data: JSON) -> list[JSON]:
        delta = data.get("delta")
        index = data.get("index")
        if not isinstance(delta, dict):
            return []
        kind = delta.get("type")
        if kind == "text_delta":
            return self._text(text_of(delta, "text"))
        if kind == "input_json_delta" and index in self.tool_index:
            fragment = text_of(delta, "partial_json")
            if fragment:
                self.tool_input.pop(index, None)
            return self._arguments(self.tool_index[index], fragment)
        if kind == "thinking_delta" and isinstance(index, int):
            text = text_of(delta, "thinking")
            self.thinking[index] = self.thinking.get(index, "") + text
            return self._reasoning(text)
        if kind == "signature_delta" and isinstance(index, int):
            return self._signed_thinking(index, text_of(delta, "signature"))
        return []

    def _text(self, text: str) -> list[JSON]:
        if not text:
            return []
        self.output_chars += len(text)
        return [self._chunk({"content": text})]

    def _reasoning(self, text: str) -> list[JSON]:
        if not text:
            return []
        self.output_chars += len(text)  # produced (and billed) even when not shown
        if self.reply == REPLY_EXCLUDED:
            return []
        if self.reply == REPLY_OPENROUTER:
            return [self._chunk({"reasoning_content": text, "reasoning": text})]
        return [self._chunk({"reasoning_content": text})]

    def _arguments(self, tool_index: int, fragment: str) -> list[JSON]:
        if not fragment:
            return []
        self.output_chars += len(fragment)
        call = {"index": tool_index, "function": {"arguments": fragment}}
        return [self._chunk({"tool_calls": [call]})]

    def _signed_thinking(self, index: int, signature: str) -> list[JSON]:
        """The whole signed thinking block once, so a client can hand it back next turn."""
        if not signature:
            return []
        block = {
            "type": "thinking",
            "thinking": self.thinking.get(index, ""),
            "signature": signature,
        }
        return self._thinking_block(block)

    def _thinking_block(self, block: JSON) -> list[JSON]:
        """One whole thinking block, with its position among them as `index`: OpenAI SDKs
        merge list deltas by index (and refuse list entries without one). None when the
        client asked for no thinking text (OpenRouter's reasoning.exclude)."""
        if self.reply == REPLY_EXCLUDED:
            return []
        block["index"] = self.thinking_blocks_sent
        self.thinking_blocks_sent += 1
        return [self._chunk({"thinking_blocks": [block]})]

    def _on_block_stop(self, data: JSON) -> list[JSON]:
        """A tool call whose input never streamed (a tool without parameters) gets it whole.

        Anthropic sends such a call as an empty start `input` and at most an empty
        partial_json; an OpenAI client needs a JSON object, as the non-streamed answer gives.
        """
        index = data.get("index")
        if not isinstance(index, int) or index not in self.tool_input:
            return []
        start_input = self.tool_input.pop(index)
        arguments = json.dumps(start_input if isinstance(start_input, dict) else {})
        return self._arguments(self.tool_index[index], arguments)

    def _on_message_delta(self, data: JSON) -> list[JSON]:
        delta = _obj(data, "delta")
        usage = _obj(data, "usage")
        cumulative = {k: v for k, v in usage.items() if v is not None}
        if isinstance(cumulative.get("output_tokens"), int):  # message_delta counts are final
            self.counts = _merge_counts(self.counts, cumulative)  # (a later one may leave out
            self.usage = usage_from(self.counts)  # a count an earlier one gave)
        if delta.get("stop_reason") is None or self.finish_sent:
            return []
        self.finish_sent = True
        refusal = refusal_words(delta["stop_reason"], delta.get("stop_details"))
        said = [self._chunk({"refusal": refusal})] if refusal else []  # OpenAI's refusal delta
        return [*said, self._chunk({}, finish_reason(delta["stop_reason"]))]

    def _on_message_stop(self, data: JSON) -> list[JSON]:
        self.finished = True
        return []

    def finish(self) -> list[JSON]:
        """A finish chunk if the stream ended normally but never said why."""
        if not self.finished or self.finish_sent:
            return []
        self.finish_sent = True
        return [self._chunk({}, "stop")]

    def _on_error(self, data: JSON) -> list[JSON]:
        error = _obj(data, "error")
        message = _str(error, "message", "error")
        kind = _str(error, "type", "upstream_error")
        raise UpstreamStreamError(f"Anthropic stream error ({kind}): {message}", code=kind)


_HANDLERS = {
    "message_start": AnthropicStreamTranslator._on_message_start,
    "content_block_start": AnthropicStreamTranslator._on_block_start,
    "content_block_delta": AnthropicStreamTranslator._on_block_delta,
    "content_block_stop": AnthropicStreamTranslator._on_block_stop,
    "message_delta": AnthropicStreamTranslator._on_message_delta,
    "message_stop": AnthropicStreamTranslator._on_message_stop,
    "error": AnthropicStreamTranslator._on_error,
}
