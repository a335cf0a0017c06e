"""Messages API in, Messages API out: the pass-through to an `anthropic` provider.

The body goes up as the client sent it (thinking blocks and signatures, cache_control,
documents, images, tools, metadata, tool_choice, fields this code has never heard of), with
only `model` replaced by the upstream name, `max_tokens` held to what was reserved (a
server-side fallback entry's own too), cache diagnostics comparing it with no earlier request
(without_compared_request), and thinking blocks without a signature, or with the box's own
(an `openai` model's reasoning and OpenRouter's reasoning details, as the translation hands
them back), left out (and `thinking` itself when that took the block beginning the turn whose
tool results the request answers: Anthropic requires one there), and tool call
ids another server made (Kimi K2's `functions.f:0`) mapped to Anthropic's pattern: Anthropic
refuses both. The
client's `anthropic-version` and `anthropic-beta` go with it; the operator's key replaces the
user's. Answers come back as they are (the `model` shown is the catalog id), and stream events
are relayed one by one, unknown types included, while the usage is read from `message_start`
and the cumulative `message_delta`. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

from codelace_box.providers.anthropic import ANTHROPIC_VERSION, AnthropicAdapter
from codelace_box.providers.anthropic_messages import TOOL_ID_RE, tool_id
from codelace_box.providers.anthropic_output import fit_output_fields
from codelace_box.providers.anthropic_response import (
    MAX_ERROR_CHARS,
    anthropic_error,
    billed_usage,
    check_message,
    input_tokens,
    usage_from,
)
from codelace_box.providers.anthropic_stream import _merge_counts, event_data
from codelace_box.providers.base import (
    JSON,
    SSEEvent,
    StreamTranslator,
    UpstreamRequest,
    UpstreamStreamError,
    UpstreamTarget,
    Usage,
)
from codelace_box.providers.reasoning_details import is_sealed

_DELTA_TEXT = ("text", "thinking", "partial_json")
# Events that carry what the model produced: an error after one of them is not retried.
CONTENT_EVENTS = frozenset({"content_block_start", "content_block_delta", "message_delta"})


def _unsigned_thinking(block: Any) -> bool:
    """A thinking block Anthropic did not sign: none, or the box's sealed reasoning details."""
    if not isinstance(block, dict) or block.get("type") != "thinking":
        return False
    return not block.get("signature") or is_sealed(block["signature"])


def without_unsigned_thinking(messages: Any) -> Any:
    """The messages without the thinking blocks that carry no signature: an `openai` model's
    reasoning as the translation handed it back (a conversation moved to an Anthropic model,
    Claude Code's /model), which Anthropic refuses; an assistant turn of nothing else goes, and
    the user turns around it become one (as Anthropic combines them). Every other message is
    the very object sent."""
    if not isinstance(messages, list) or not any(
        isinstance(m, dict) and isinstance(m.get("content"), list)
        and any(_unsigned_thinking(b) for b in m["content"]) for m in messages
    ):  # fmt: skip
        return messages
    kept: list[Any] = []
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list) or not any(_unsigned_thinking(b) for b in content):
            kept.append(message)
        elif blocks := [b for b in content if not _unsigned_thinking(b)]:
            kept.append({**message, "content": blocks})
        else:
            continue
        if len(kept) > 1 and _joinable(kept[-2], kept[-1]):
            kept[-2:] = [{**kept[-2], "content": _blocks(kept[-2]) + _blocks(kept[-1])}]
    return kept


_ID_FIELDS = {"tool_use": "id", "tool_result": "tool_use_id"}  # block type -> its call id
_THINKING_KINDS = ("thinking", "redacted_thinking")


def _foreign_id(block: Any) -> str | None:
    """The field of a tool_use or tool_result block whose id Anthropic refuses, if any."""
    kind = block.get("type") if isinstance(block, dict) else None
    field = _ID_FIELDS.get(kind) if isinstance(kind, str) else None
    value = block.get(field) if field else None
    return field if isinstance(value, str) and not TOOL_ID_RE.match(value) else None


def with_anthropic_tool_ids(messages: Any) -> Any:
    """The messages with tool call ids another server made (Kimi K2's `functions.f:0`, as the
    translation handed them to the client) in Anthropic's pattern, the tool_use and its
    tool_result mapped alike (`tool_id`); Anthropic refuses the whole request otherwise. The
    messages without such an id are the very objects sent."""
    if not isinstance(messages, list):
        return messages
    mapped: list[Any] = []
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list) or not any(_foreign_id(b) for b in content):
            mapped.append(message)
            continue
        blocks = []
        for block in content:
            field = _foreign_id(block)
            blocks.append({**block, field: tool_id(block[field])} if field else block)
        mapped.append({**message, "content": blocks})
    return mapped


def history_for_anthropic(messages: Any) -> Any:
    """The conversation as Anthropic takes it: no unsigned thinking, tool ids in its pattern."""
    return with_anthropic_tool_ids(without_unsigned_thinking(messages))


def _joinable(first: Any, second: Any) -> bool:
    """Two user turns side by side (an assistant turn between them was left out)."""
    return all(isinstance(m, dict) and m.get("role") == "user" for m in (first, second))


def _blocks(message: JSON) -> list[Any]:
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return list(content) if isinstance(content, list) else []


def upstream_body(body: JSON, upstream_model: str, max_tokens: int | None) -> JSON:
    """The client's body with the upstream model name, the reserved output cap, no unsigned
    thinking blocks and tool ids in Anthropic's pattern."""
    payload = dict(body)
    payload["model"] = upstream_model
    with_history_for_anthropic(payload, body)
    cap = body.get("max_tokens")
    if max_tokens is not None and (not isinstance(cap, int) or cap > max_tokens):
        payload["max_tokens"] = max_tokens
    if isinstance(payload.get("fallbacks"), list) and isinstance(payload.get("max_tokens"), int):
        payload["fallbacks"] = _fallbacks_within(payload["fallbacks"], payload["max_tokens"])
    return payload


def with_history_for_anthropic(payload: JSON, body: JSON) -> None:
    """`payload` (a copy of the client's `body`: a call or its count_tokens) with its messages
    as Anthropic takes them, and without thinking when leaving out an `openai` model's
    unsigned thinking took the one that began the tool loop answered (`_thinking_left_out`)."""
    if "messages" not in payload:
        return
    payload["messages"] = history_for_anthropic(payload["messages"])
    if "thinking" in body and _thinking_left_out(body["messages"], payload["messages"]):
        _without_thinking(payload)


def _first_block(messages: Any, at: int) -> Any:
    """The first content block of the message `at` from the end, if there is one."""
    message = messages[at] if isinstance(messages, list) and len(messages) >= -at else None
    content = message.get("content") if isinstance(message, dict) else None
    return content[0] if isinstance(content, list) and content else None


def _answers_tools_unthought(messages: Any) -> bool:
    """Whether the last turn answers tool results and the assistant turn before it does not
    begin with thinking."""
    if not isinstance(messages, list) or len(messages) < 2:
        return False
    last, turn = messages[-1], messages[-2]
    blocks = last.get("content") if isinstance(last, dict) else None
    first = _first_block(messages, -2)
    return (
        isinstance(blocks, list)
        and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in blocks)
        and isinstance(turn, dict) and turn.get("role") == "assistant"
        and not (isinstance(first, dict) and first.get("type") in _THINKING_KINDS)
    )  # fmt: skip


def _loop_began_unthought(messages: Any) -> bool:
    """Whether the tool loop the request goes on (assistant turns and the tool results that
    answer them, back from the last) began with an `openai` model's unsigned thinking; it ends
    at a thinking block Anthropic signed, or at a user turn that answers no tool."""
    at = len(messages) - 2 if isinstance(messages, list) else -1
    while at >= 0:
        first = _first_block(messages, at - len(messages))
        if isinstance(first, dict) and first.get("type") in _THINKING_KINDS:
            return _unsigned_thinking(first)
        user = messages[at - 1] if at >= 1 else None
        blocks = user.get("content") if isinstance(user, dict) else None
        if not isinstance(blocks, list) or not any(
            isinstance(b, dict) and b.get("type") == "tool_result" for b in blocks
        ):
            return False
        at -= 2
    return False


def _thinking_left_out(sent: Any, kept: Any) -> bool:
    """Whether leaving out an `openai` model's unsigned thinking took the one that began the
    tool loop whose results the request answers: a tool loop is one assistant turn of one
    thinking configuration, and with thinking on Anthropic requires its final assistant message
    to begin with thinking (400 "a final `assistant` message must start with a thinking
    block"), so every call of that loop goes without thinking, as the chat translation's does.
    (A look at the last turn's blocks and one more for a call whose last turn began with it.)"""
    return _answers_tools_unthought(kept) and _loop_began_unthought(sent)


def _without_thinking(payload: JSON) -> None:
    """The call without `thinking`, and without the `clear_thinking_*` context edits Anthropic
    refuses then (400 "`clear_thinking_20251015` strategy requires `thinking` to be enabled or
    adaptive": Claude Code sends one with thinking on); the other edits kept."""
    payload.pop("thinking", None)
    management = payload.get("context_management")
    edits = management.get("edits") if isinstance(management, dict) else None
    if not isinstance(management, dict) or not isinstance(edits, list):
        return
    kept = [e for e in edits if not (isinstance(e, dict) and isinstance(e.get("type"), str)
                                     and e["type"].startswith("clear_thinking"))]  # fmt: skip
    if len(kept) == len(edits):
        return
    if kept:
        payload["context_management"] = {**management, "edits": kept}
    else:
        del payload["context_management"]


def _fallbacks_within(fallbacks: list[Any], cap: int) -> list[Any]:
    """Server-side fallback entries (where the operator allowed them) with their own
    max_tokens, which replaces the request's for that model, held to the reserved cap."""
    held = []
    for entry in fallbacks:
        own = entry.get("max_tokens") if isinstance(entry, dict) else None
        too_many = isinstance(own, int) and not isinstance(own, bool) and own > cap
        held.append({**entry, "max_tokens": cap} if too_many else entry)
    return held


def without_compared_request(payload: JSON) -> JSON:
    """The body with Anthropic's cache diagnostics comparing against no earlier request:
    `diagnostics.previous_message_id` names any request of the provider account (another
    user's too, or the operator's other apps'), and the answer says which of its model,
    system, tools or messages differ from this one and by how many tokens, an oracle on a
    prompt that is not the sender's. Sent as null, the opt-in Claude Code sends still holds."""
    diagnostics = payload.get("diagnostics")
    if type(diagnostics) is not dict or diagnostics.get("previous_message_id") is None:
        return payload
    return {**payload, "diagnostics": {**diagnostics, "previous_message_id": None}}


def container_of(value: Any) -> tuple[str, str | None] | None:
    """The (id, expires_at) of Anthropic's `container` object in an answer, if it is one."""
    if type(value) is not dict or type(value.get("id")) is not str or not value["id"]:
        return None
    expires = value.get("expires_at")
    return value["id"], expires if type(expires) is str else None


class MessagesPassthrough(AnthropicAdapter):
    """A Messages body to an Anthropic upstream, kept as sent; one per call (it carries the
    client's version and beta headers, and the container its answer named)."""

    def __init__(self, forwarded: dict[str, str], path: str = "/v1/messages") -> None:
        self.forwarded = forwarded
        self.path = path
        self.container: tuple[str, str | None] | None = None

    def saw_container(self, value: Any) -> None:
        """Keep the `container` object an answer or stream event carried (the latest)."""
        found = container_of(value)
        if found is not None:
            self.container = found

    def check_request(
        self, body: JSON, upstream_model: str = "", *, default_max_tokens: int | None = None
    ) -> None:
        """Nothing to refuse: the upstream speaks this body's language."""

    def build_request(self, body: JSON, target: UpstreamTarget) -> UpstreamRequest:
        """The body as sent, to `{base}/v1/messages` (or count_tokens) with the forwarded
        headers and the operator's key."""
        headers = {"anthropic-version": ANTHROPIC_VERSION, **self.forwarded}
        headers |= {"x-api-key": target.api_key, "content-type": "application/json"}
        if self.path.endswith("/count_tokens"):
            payload = dict(body)
            payload["model"] = target.upstream_model
            with_history_for_anthropic(payload, body)  # as the call itself goes
        else:
            payload = upstream_body(body, target.upstream_model, target.default_max_tokens)
        payload = fit_output_fields(without_compared_request(payload), headers,
                                    target.refused_fields)  # fmt: skip
        base = (target.base_url or self.default_base_url).rstrip("/")
        return UpstreamRequest(url=f"{base}{self.path}", headers=headers, json_body=payload)

    def error_message(self, status: int, payload: bytes) -> str:
        """Anthropic's own message, word for word, when the body is its error: a client of the
        Messages API acts on some by their exact words (Claude Code lowers its effort on
        "Invalid effort level"); any other body as the Anthropic adapter words it."""
        error = anthropic_error(payload)
        if error is not None and error["message"]:
            return str(error["message"][:MAX_ERROR_CHARS])
        return super().error_message(status, payload)

    def parse_response(self, payload: JSON, public_model: str) -> tuple[JSON, Usage]:
        """The upstream's message as it is (model: the catalog id) and its usage."""
        check_message(payload)
        billed = billed_usage(payload)
        self.saw_container(payload.get("container"))
        payload["model"] = public_model
        return payload, billed

    def stream_translator(self, public_model: str) -> StreamTranslator:
        """A relay of one Anthropic stream."""
        return PassthroughStream(public_model, self)


class PassthroughStream(StreamTranslator):
    """Relays each Anthropic event as it came, keeping the usage and the end in view."""

    def __init__(self, public_model: str, adapter: MessagesPassthrough | None = None) -> None:
        super().__init__()
        self.public_model = public_model
        self.adapter = adapter  # told the container message_start or message_delta names
        self.counts: JSON = {}  # message_start's usage, updated by each message_delta's

    def feed(self, event: SSEEvent) -> list[JSON]:
        """The event itself (as a dict with its `type`); an `error` event, or one that is not
        a JSON object, raises."""
        data = event_data(event)
        if data is None:
            return []
        if not isinstance(data.get("type"), str) and event.event:
            data["type"] = event.event
        kind = data.get("type")
        if kind in CONTENT_EVENTS:
            self.began = True
        if kind == "message_start":
            self._on_start(data)
        elif kind == "content_block_delta":
            self._count(data.get("delta"))
        elif kind == "message_delta":
            self._on_delta(data)
        elif kind == "message_stop":
            self.finished = True
        elif kind == "error":
            _raise(data)
        elif isinstance(kind, str) and not kind.isprintable():  # no API's: its line end (or
            return []  # half a surrogate pair) would break the client's `event:` line
        return [data]

    def _on_start(self, data: JSON) -> None:
        message = data.get("message")
        if not isinstance(message, dict):
            return
        if self.adapter is not None:
            self.adapter.saw_container(message.get("container"))
        usage = message.get("usage")
        self.counts = usage if isinstance(usage, dict) else {}
        self.input_tokens_seen = input_tokens(self.counts)
        self.usage_seen = usage_from(self.counts)
        message["model"] = self.public_model

    def _count(self, delta: Any) -> None:
        if isinstance(delta, dict):
            for name in _DELTA_TEXT:
                text = delta.get(name)
                if isinstance(text, str):
                    self.output_chars += len(text)

    def _on_delta(self, data: JSON) -> None:
        delta = data.get("delta")
        if self.adapter is not None:  # (in `delta` as Anthropic sends it; at the top as well)
            self.adapter.saw_container(data.get("container"))
            self.adapter.saw_container(delta.get("container") if type(delta) is dict else None)
        usage = data.get("usage")
        if not isinstance(usage, dict):
            return
        cumulative = {k: v for k, v in usage.items() if v is not None}
        if isinstance(cumulative.get("output_tokens"), int):  # message_delta counts are final
            self.counts = _merge_counts(self.counts, cumulative)  # (a later one may leave out
            self.usage = usage_from(self.counts)  # a count an earlier one gave)
            self.output_tokens_seen = max(self.output_tokens_seen, self.usage.output_tokens)


def _raise(data: JSON) -> None:
    error = data.get("error")
    error = error if isinstance(error, dict) else {}
    message = error.get("message") if isinstance(error.get("message"), str) else "error"
    kind = error.get("type") if isinstance(error.get("type"), str) else "upstream_error"
    raise UpstreamStreamError(f"Anthropic stream error ({kind}): {message}", code=str(kind))
