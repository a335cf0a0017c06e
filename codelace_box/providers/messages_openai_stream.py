"""Answers of an `openai` provider back in the Messages API's shapes.

A chat completion becomes a `message` (messages_openai_whole.py); a stream of chunks becomes
Anthropic's events in their documented order: message_start, then for each block
content_block_start, its deltas and content_block_stop (indexes counted from 0 in the order
blocks open), then message_delta with the stop reason ("tool_use" for an answer with tool calls
that the server ended with "stop") and the final usage, then message_stop. OpenRouter's
`reasoning_details` are sealed in a thinking block's signature (a `signature_delta` before its
stop; details that come while a tool call streams, in a thinking block of their own at the end):
providers/reasoning_details.py. A tool call's argument pieces are relayed while they can
still begin a JSON object (providers/json_prefix.py); the rest of arguments that cannot (a small
model's `city=Paris`) is dropped, as the unstreamed answer's `input` is then `{}`: the anthropic
SDK parses the pieces as they come and one that no object begins with ends its stream. An
answer the server ended with finish_reason "error" (OpenRouter's, for a generation that failed
after it began: the error on the choice) is a failure (`failed_finish`): the Messages API has
no stop reason for it, and end_turn made the cut text the model's last word. Pure: no I/O.
"""

from __future__ import annotations

import secrets
from typing import Any

from codelace_box.jsonwire import is_whole_json
from codelace_box.providers.base import (
    JSON,
    SSEEvent,
    StreamTranslator,
    UpstreamStreamError,
    Usage,
)
from codelace_box.providers.call_keys import CallKeys, arguments_of
from codelace_box.providers.chat_text import content_text, reasoning_text
from codelace_box.providers.json_prefix import ObjectPrefix
from codelace_box.providers.openai_errors import failed_finish
from codelace_box.providers.reasoning_details import details_of, merge, seal, with_reasoning
from codelace_box.providers.stop_reasons import stop_of, with_calls
from codelace_box.providers.thought_signature import signature_of, signed_id, split_id

# The mark of an event the translation counts but the client never gets: a thinking delta left
# out for `thinking.display: "omitted"` (the relay's tally counts its output, and cuts it at the
# reserved cap, as when it is shown; gateway/dialects.py encode_event writes nothing for it).
HIDDEN = "codelace_hidden"


def anthropic_usage(usage: Usage) -> JSON:
    """Anthropic's usage object: input_tokens are the uncached ones; the upstream's
    reasoning_tokens, when it counts them, as `output_tokens_details.thinking_tokens`."""
    cached = usage.cache_read_tokens + usage.cache_write_tokens
    out: JSON = {
        "input_tokens": max(usage.input_tokens - cached, 0),
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cache_read_tokens,
        "output_tokens": usage.output_tokens,
    }
    details = usage.details.get("completion_tokens_details")
    reasoning = details.get("reasoning_tokens") if isinstance(details, dict) else None
    if type(reasoning) is int:  # (a part of output_tokens, as Anthropic's; a bool is no count)
        out["output_tokens_details"] = {
            "thinking_tokens": min(max(reasoning, 0), out["output_tokens"])
        }
    return out


def _obj(holder: JSON, name: str) -> JSON:
    value = holder.get(name)
    return value if isinstance(value, dict) else {}


def answer_text(message: JSON) -> str:
    """The text of a chat message or delta: its content, or OpenAI's `refusal` (a refused
    answer comes with content null; the user reads it as the answer's text)."""
    refusal = message.get("refusal")
    text = content_text(message)
    return text or (refusal if isinstance(refusal, str) else "")


def earlier_call_ids(body: JSON) -> frozenset[str]:
    """The upstream call ids of the tool_use blocks a Messages body already holds."""
    found: set[str] = set()
    messages = body.get("messages")
    for message in messages if isinstance(messages, list) else []:
        content = message.get("content") if isinstance(message, dict) else None
        for block in content if isinstance(content, list) else []:
            if isinstance(block, dict) and block.get("type") == "tool_use":
                found.add(split_id(str(block.get("id", "")))[0])
    return frozenset(found)


def tool_use_id(call: JSON, earlier: frozenset[str], issued: set[str]) -> Any:
    """A tool call's id for its tool_use block, Gemini's thought signature in it if any; a call
    the server gave no id, one an earlier turn of the conversation has (some servers number
    each answer's calls from call_0), or one an earlier call of this answer got (`issued`:
    DeepSeek, GLM and Kimi-style servers give parallel calls one id), gets one of its own:
    Claude Code drops a tool_use whose id it has already seen, and Anthropic refuses ids that
    repeat. The new id goes upstream with the call's result; `issued` gets the id given."""
    call_id = call.get("id")
    if not isinstance(call_id, str) or not call_id or call_id in earlier or call_id in issued:
        call_id = f"toolu_{secrets.token_hex(12)}"
    issued.add(call_id)
    return signed_id(call_id, signature_of(call))


def message_id(_completion_id: Any = None) -> str:
    """A Messages id of its own for each answer, as Anthropic's are: never the upstream's
    completion id, which some servers leave out or repeat (Ollama draws chatcmpl-0..998), and
    Claude Code merges the turns that share a message id into one."""
    return f"msg_{secrets.token_hex(12)}"


class OpenAIToMessagesStream(StreamTranslator):
    """OpenAI chunks (through the OpenAI translator, which keeps the usage) in, Anthropic
    events out, with block indexes counted as blocks open."""

    def __init__(
        self,
        inner: StreamTranslator,
        public_model: str,
        catalog_model: str = "",
        earlier: frozenset[str] = frozenset(),
        stops: tuple[str, ...] = (),
    ) -> None:
        super().__init__()
        self.earlier = earlier  # the call ids the conversation already holds
        self.issued: set[str] = set()  # the call ids this answer's tool_use blocks got
        self.stops = stops  # the request's stop sequences
        self.full_names: dict[str, str] = {}  # tool names shortened for OpenAI -> full names
        self.tail = ""  # the text's end, as long as the longest stop (to tell which matched)
        self.inner = inner
        self.public_model = public_model
        self.catalog_model = catalog_model or public_model  # reasoning details are sealed for
        self.started = False
        self.index = -1  # the current block's index
        self.kind: str | None = None  # the open block's type
        self.tool_blocks: dict[Any, int] = {}  # OpenAI tool call index -> block index
        self.arguments: dict[Any, str] = {}  # OpenAI tool call index -> arguments so far
        self.checks: dict[Any, ObjectPrefix] = {}  # ... -> whether they can begin an object
        self.live_tool: Any = None  # the OpenAI index of the tool_use block open now
        self.deferred: dict[Any, JSON] = {}  # tool calls begun while another was unfinished
        self.keys = CallKeys()  # which call a piece belongs to
        self.stop_reason = "end_turn"
        self.stop_sequence: str | None = None
        self.details: list[JSON] = []  # reasoning details streamed, for the next thinking stop
        self.blank = ""  # whitespace text held until text or the end (_text)
        self.omitted = False  # thinking.display "omitted": no thinking_delta, the text sealed
        self.hidden = ""  # the open thinking block's text left out (sealed at its stop)

    def feed(self, event: SSEEvent) -> list[JSON]:
        """The events for one upstream chunk."""
        out: list[JSON] = []
        for chunk in self.inner.feed(event):
            out.extend(self._chunk(chunk))
        self._sync()
        return out

    def counted_whole(self) -> bool:
        return self.inner.counted_whole()

    def _sync(self) -> None:
        inner = self.inner
        self.usage, self.finished = inner.usage, inner.finished
        self.output_chars, self.input_tokens_seen = inner.output_chars, inner.input_tokens_seen
        self.output_tokens_seen, self.usage_seen = inner.output_tokens_seen, inner.usage_seen

    def _start(self, chunk_id: Any) -> list[JSON]:
        if self.started:
            return []
        self.started = True
        message: JSON = {"id": message_id(chunk_id), "type": "message", "role": "assistant",
                   "model": self.public_model, "content": [], "stop_reason": None,
                   "stop_sequence": None,
                   "usage": {"input_tokens": 0, "output_tokens": 0}}  # fmt: skip
        return [{"type": "message_start", "message": message}]

    def _chunk(self, chunk: JSON) -> list[JSON]:
        out = self._start(chunk.get("id"))
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            if (failure := failed_finish(choice)) is not None:
                raise UpstreamStreamError(failure)
            delta = _obj(choice, "delta")
            if reasoning := reasoning_text(delta):
                out += self._delta("thinking", {"type": "thinking_delta", "thinking": reasoning})
            if pieces := details_of(delta):
                out += self._details(pieces)
            if text := answer_text(delta):
                out += self._text(text)
                if stops := self.stops:
                    self.tail = (self.tail + text)[-max(map(len, stops)) :]
            for call in delta.get("tool_calls") or []:
                if isinstance(call, dict):
                    out += self._tool_call(call)
            if choice.get("finish_reason"):
                out += self._flush_deferred()
                self.stop_reason, self.stop_sequence = stop_of(choice, self.stops, self.tail)
        return out

    def _delta(self, kind: str, delta: JSON) -> list[JSON]:
        out: list[JSON] = []
        if self.kind != kind:
            out += self._flush_deferred() + self._close()
            self.index += 1
            self.kind = kind
            block: JSON = {"type": kind, kind: ""}
            if kind == "thinking":  # an OpenAI upstream signs nothing: empty, as in answers
                block["signature"] = ""
            out.append({"type": "content_block_start", "index": self.index, "content_block": block})
        event = {"type": "content_block_delta", "index": self.index, "delta": delta}
        if self.omitted and delta.get("type") == "thinking_delta":
            self.hidden += delta["thinking"]
            event[HIDDEN] = True  # counted by the relay (output charged, cap), never written
        out.append(event)
        return out

    def _text(self, text: str) -> list[JSON]:
        """Answer text. Blank text with no text block open is held: it leads the text that
        follows, or is the answer if nothing else comes, and goes before tool calls (Qwen's
        "\n\n"): a block of whitespace alone makes a history Anthropic refuses."""
        if self.kind != "text" and not text.strip():
            self.blank += text
            return []
        text, self.blank = self.blank + text, ""
        return self._delta("text", {"type": "text_delta", "text": text})

    def _blank_answer(self) -> list[JSON]:
        """At the end: the blank text held, if the answer has nothing else."""
        blank, self.blank = self.blank, ""
        if not blank or self.tool_blocks or self.deferred:
            return []
        return self._delta("text", {"type": "text_delta", "text": blank})

    def _details(self, pieces: list[JSON]) -> list[JSON]:
        """Reasoning details: kept for the thinking block open (one is opened when none or a
        text block is open); while a tool call streams they wait for the end (a thinking
        block of their own then), as a delta for a stopped block breaks clients."""
        self.details += pieces
        if self.kind in ("thinking", "tool_use") or self.deferred:
            return []
        return self._delta("thinking", {"type": "thinking_delta", "thinking": ""})

    def _tool_call(self, call: JSON) -> list[JSON]:
        """A tool call's piece (its call told apart by providers/call_keys.py). A call that
        begins while the open one's arguments are not yet whole JSON is held back (its pieces
        too) until the finish: some servers send every call's header before any arguments,
        and a delta for a stopped block breaks clients."""
        key = self.keys.key_of(call)
        function = _obj(call, "function")
        arguments = arguments_of(function)
        if key in self.deferred:
            self.deferred[key]["arguments"] += arguments
            return []
        out: list[JSON] = []
        if key not in self.tool_blocks:
            if self.kind == "tool_use" and not is_whole_json(self.arguments[self.live_tool]):
                self.deferred[key] = {"id": tool_use_id(call, self.earlier, self.issued),
                                      "name": function.get("name"),
                                      "arguments": arguments}  # fmt: skip
                return []
            tool_id = tool_use_id(call, self.earlier, self.issued)
            out += self._open_tool(key, tool_id, function.get("name"))
        return out + self._arguments(key, arguments)

    def _arguments(self, key: Any, arguments: str) -> list[JSON]:
        """A piece of the arguments of the call `key`, relayed while they can begin an object
        (the anthropic SDK's partial parse would end the stream; the block keeps what was
        whole)."""
        if not arguments:
            return []
        self.arguments[key] += arguments
        if not self.checks[key].feed(arguments):
            return []
        delta = {"type": "input_json_delta", "partial_json": arguments}
        return [{"type": "content_block_delta", "index": self.tool_blocks[key], "delta": delta}]

    def _open_tool(self, key: Any, call_id: Any, name: Any) -> list[JSON]:
        out = self._close()
        self.index += 1
        self.kind, self.live_tool = "tool_use", key
        self.tool_blocks[key], self.arguments[key] = self.index, ""
        self.checks[key] = ObjectPrefix()
        block: JSON = {"type": "tool_use", "id": call_id or f"toolu_{self.index}",
                       "name": self.full_names.get(name, name) or "", "input": {}}  # fmt: skip
        return [*out, {"type": "content_block_start", "index": self.index, "content_block": block}]

    def _flush_deferred(self) -> list[JSON]:
        """The held-back tool calls, each a whole block, in the order they began."""
        out: list[JSON] = []
        held, self.deferred = self.deferred, {}
        for key, call in held.items():
            out += self._open_tool(key, call["id"], call["name"])
            out += self._arguments(key, call["arguments"])
        return out

    def _close(self) -> list[JSON]:
        if self.kind is None:
            return []
        out = self._signed()
        self.kind = None
        return [*out, {"type": "content_block_stop", "index": self.index}]

    def _signed(self) -> list[JSON]:
        """The open thinking block's signature_delta, its reasoning details (and the text left
        out) sealed in it; none for another block, or one with nothing to seal."""
        if self.kind != "thinking" or not (self.details or self.hidden):
            return []
        details = with_reasoning(merge(self.details), self.hidden)
        delta = {"type": "signature_delta", "signature": seal(details, self.catalog_model)}
        self.details, self.hidden = [], ""
        return [{"type": "content_block_delta", "index": self.index, "delta": delta}]

    def cut(self) -> list[JSON]:
        """Cut at the output cap: the open thinking block signed as its stop would sign it
        (the relay's dialect then stops the open blocks)."""
        return self._signed()

    def finish(self) -> list[JSON]:
        """At the upstream's end: the last block closed, message_delta, message_stop. Also
        for a stream that closed without a finish_reason or `[DONE]` but with its usage, which
        the relay takes as complete (and charges so): a message left open would end with
        message_stop alone, without its stop reason and counts."""
        self.inner.finish()
        self._sync()
        if not self.finished and self.usage is None:
            return []
        out = self._start(None) + self._blank_answer() + self._flush_deferred() + self._close()
        if self.details:  # details that came while a tool call streamed: a block of their own
            out += self._delta("thinking", {"type": "thinking_delta", "thinking": ""})
            out += self._close()
        usage = self.usage or Usage(self.input_tokens_seen, -(-self.output_chars // 4))
        reason = with_calls(self.stop_reason, bool(self.tool_blocks))
        out.append({"type": "message_delta",
                    "delta": {"stop_reason": reason,
                              "stop_sequence": self.stop_sequence},
                    "usage": anthropic_usage(usage)})  # fmt: skip
        out.append({"type": "message_stop"})
        return out
