"""Anthropic Messages API answers -> OpenAI shapes: the completion, finish reasons, usage, errors.

Pure code shared by the non-streaming parser and the stream translator.
"""

from __future__ import annotations

import json
import time
from typing import Any

from codelace_box.errors import UpstreamError
from codelace_box.jsonwire import NOT_JSON, loads
from codelace_box.providers.anthropic_thinking import (
    REPLY_DEFAULT,
    REPLY_EXCLUDED,
    REPLY_OPENROUTER,
)
from codelace_box.providers.base import AdvisorTokens, Usage
from codelace_box.providers.openai_errors import page_text
from codelace_box.providers.tally import CHARS_PER_TOKEN

JSON = dict[str, Any]

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
MAX_ERROR_CHARS = 500


def finish_reason(stop_reason: Any) -> str:
    """OpenAI finish_reason for an Anthropic stop_reason (unknown or missing ones: stop)."""
    return FINISH_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


REFUSED = "The model declined to answer (Anthropic's stop_reason: refusal)."


def refusal_words(stop_reason: Any, stop_details: Any) -> str | None:
    """OpenAI's `refusal` text for Claude's refusal: Anthropic's `stop_details.explanation`,
    or the box's own sentence (Anthropic sends no words of its own with every refusal); None
    for any other stop."""
    if stop_reason != "refusal":
        return None
    given = stop_details.get("explanation") if isinstance(stop_details, dict) else None
    return given if isinstance(given, str) and given.strip() else REFUSED


def completion_id(message_id: Any) -> str:
    """An OpenAI-style completion id carrying Anthropic's message id."""
    return f"chatcmpl-{message_id}" if isinstance(message_id, str) and message_id else "chatcmpl-"


def _count(usage: JSON, name: str) -> int:
    """A count of an Anthropic usage object; 0 for none, and for one no provider gives (a
    boolean, a negative number: a negative cache read taken out of the input was charged as
    that many more uncached tokens)."""
    value = usage.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


_SPLIT_COUNTS = ("ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens")


def cache_writes(usage: JSON) -> int:
    """The cache writes of an Anthropic usage object: its flat `cache_creation_input_tokens`,
    or the sum of its `cache_creation` 5m/1h split where that is larger (a server that gives
    only the split, or a compatible one whose flat count falls short of it: the larger view
    is what the provider bills, and billing less loses the operator the difference)."""
    flat = usage.get("cache_creation_input_tokens")
    split = usage.get("cache_creation")
    split_sum = sum(_count(split, name) for name in _SPLIT_COUNTS) if isinstance(split, dict) else 0
    if isinstance(flat, int) and not isinstance(flat, bool):
        return max(flat, split_sum)
    return split_sum


def input_tokens(usage: JSON) -> int:
    """All input tokens of an Anthropic usage object: uncached + cache reads + cache writes."""
    return (
        _count(usage, "input_tokens")
        + _count(usage, "cache_read_input_tokens")
        + max(cache_writes(usage), 0)
    )


# Iterations the top-level counts already hold: the model's own samplings, and the serving
# hop of a server-side fallback, which Anthropic lists "in place of `message`".
_COUNTED_ITERATIONS = ("message", "fallback_message")
ADVISOR_ITERATION = "advisor_message"  # an advisor model's call, billed at that model's rates


def advisor_tokens(usage: JSON) -> AdvisorTokens | None:
    """The tokens of the advisor calls in `usage.iterations` (their `advisor_message` items,
    summed) and the models they report, None without any: priced at the advisor model's own
    prices, or dearer if they report another model (gateway/advisor.py)."""
    iterations = usage.get("iterations")
    if type(iterations) is not list:  # (most answers: no walk)
        return None
    calls = [i for i in iterations if type(i) is dict and i.get("type") == ADVISOR_ITERATION]
    if not calls:
        return None
    part = AdvisorTokens()
    for call in calls:
        writes = max(cache_writes(call), 0)
        creation = call.get("cache_creation")
        hours = _count(creation, "ephemeral_1h_input_tokens") if isinstance(creation, dict) else 0
        part.input_tokens += input_tokens(call)
        part.output_tokens += _count(call, "output_tokens")
        part.cache_read_tokens += _count(call, "cache_read_input_tokens")
        part.cache_write_tokens += writes
        part.cache_write_1h_tokens += min(hours, writes)
        model = call.get("model")
        if isinstance(model, str) and model not in part.models:
            part.models = _with_model(part.models, model)
    return part


MAX_REPORTED_MODELS = 8  # distinct models kept of a call's advisor iterations
MORE_MODELS = "(more models than were kept)"  # in their place past that: it matches no model


def _with_model(models: tuple[str, ...], model: str) -> tuple[str, ...]:
    """The distinct models advisor calls reported, one more: a hostile upstream's list stays
    bounded, and what it reported past the kept ones still counts as another model."""
    if len(models) < MAX_REPORTED_MODELS:
        return (*models, model)
    return models if MORE_MODELS in models else (*models, MORE_MODELS)


def _with_iterations(usage: JSON) -> JSON:
    """The usage counts plus those of the extra samplings Anthropic reports only in
    `usage.iterations` (server-side compaction: its pass over the whole conversation is billed,
    but the top-level counts are the `message` iterations' alone; an advisor's calls)."""
    iterations = usage.get("iterations")
    extra = [
        item
        for item in (iterations if isinstance(iterations, list) else ())
        if isinstance(item, dict) and item.get("type") not in _COUNTED_ITERATIONS
    ]
    if not extra:
        return usage
    total = dict(usage)
    for name in ("input_tokens", "cache_read_input_tokens", "output_tokens"):
        total[name] = _count(usage, name) + sum(_count(item, name) for item in extra)
    total["cache_creation_input_tokens"] = sum(cache_writes(h) for h in (usage, *extra))
    hours = [usage, *extra]
    total["cache_creation"] = {"ephemeral_1h_input_tokens": sum(
        _count(c, "ephemeral_1h_input_tokens")
        for c in (h.get("cache_creation") for h in hours) if isinstance(c, dict)
    )}  # fmt: skip
    return total


def usage_from(usage: Any) -> Usage:
    """Billable Usage (with OpenAI detail objects) from an Anthropic usage object; estimated when
    it counts no input (no call has an empty prompt: Ollama counts none of a cached one)."""
    usage = _with_iterations(usage) if isinstance(usage, dict) else {}
    prompt_details: JSON = {"cached_tokens": _count(usage, "cache_read_input_tokens")}
    writes = max(cache_writes(usage), 0)
    if writes:
        prompt_details["cache_write_tokens"] = writes
    details: JSON = {"prompt_tokens_details": prompt_details}
    output_details = usage.get("output_tokens_details")
    if isinstance(output_details, dict) and "thinking_tokens" in output_details:
        details["completion_tokens_details"] = {
            "reasoning_tokens": _count(output_details, "thinking_tokens")
        }
    billed = Usage(input_tokens(usage), _count(usage, "output_tokens"), details)
    billed.estimated = billed.input_tokens <= 0  # no prompt count: the box's (with_input)
    billed.cache_read_tokens = _count(usage, "cache_read_input_tokens")
    billed.cache_write_tokens = writes
    creation = usage.get("cache_creation")
    if isinstance(creation, dict):
        billed.cache_write_1h_tokens = min(_count(creation, "ephemeral_1h_input_tokens"), writes)
    billed.advisor = advisor_tokens(usage)
    return billed


def check_message(payload: JSON) -> None:
    """Raise the 502 of a 200 whose body is no `message` (no `content` list): a proxy's error
    body, or a compatible server's bug; the upstream failed, as an OpenAI answer without
    `choices` did."""
    if isinstance(payload.get("content"), list):
        return
    error = payload.get("error")
    message = error.get("message") if isinstance(error, dict) else None
    if isinstance(message, str):
        kind = error.get("type") if isinstance(error, dict) else None
        text = f"{kind}: {message}" if isinstance(kind, str) else message
        raise UpstreamError(f"the upstream failed: {text[:MAX_ERROR_CHARS]}", code="upstream_error")
    raise UpstreamError("the upstream answered without content", code="bad_upstream_reply")


def billed_usage(payload: JSON) -> Usage:
    """What a `message` body bills: its usage, or, when it has none (an Anthropic-compatible
    server that leaves it out did the work all the same), its output counted from the content,
    marked estimated (the gateway estimates the input)."""
    usage = payload.get("usage")
    if isinstance(usage, dict) and isinstance(usage.get("output_tokens"), int):
        return usage_from(usage)
    return Usage(0, -(-_content_chars(payload) // CHARS_PER_TOKEN), estimated=True)


def _content_chars(payload: JSON) -> int:
    content = payload.get("content")
    blocks = content if isinstance(content, list) else []
    return sum(len(json.dumps(block)) for block in blocks if isinstance(block, dict))


def tool_call(block: JSON, index: int | None = None) -> JSON:
    """An OpenAI tool call for a tool_use block (arguments as a JSON string)."""
    call: JSON = {
        "id": block.get("id", ""),
        "type": "function",
        "function": {
            "name": block.get("name", ""),
            "arguments": json.dumps(block.get("input", {})),
        },
    }
    if index is not None:
        call["index"] = index
    return call


def text_of(part: JSON, name: str) -> str:
    """A piece of text of a block or delta; "" for none, and for a value that is no text (a
    number, null: a hostile or broken upstream's), in a whole answer as in a stream."""
    value = part.get(name)
    return value if isinstance(value, str) else ""


def _message(content: list[Any], reply: str = REPLY_DEFAULT) -> JSON:
    texts: list[str] = []
    reasoning: list[str] = []
    thinking_blocks: list[JSON] = []
    calls: list[JSON] = []
    for block in content:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(text_of(block, "text"))
        elif kind == "tool_use":
            calls.append(tool_call(block))
        elif kind == "thinking":
            reasoning.append(text_of(block, "thinking"))
            thinking_blocks.append(block | {"thinking": reasoning[-1]})
        elif kind == "redacted_thinking":
            thinking_blocks.append(block)
    message: JSON = {"role": "assistant", "content": "".join(texts) if texts else None}
    if message["content"] is None and not calls:
        message["content"] = ""
    if calls:
        message["tool_calls"] = calls
    if thinking_blocks and reply != REPLY_EXCLUDED:
        message["reasoning_content"] = "".join(reasoning)
        if reply == REPLY_OPENROUTER:
            message["reasoning"] = message["reasoning_content"]
        message["thinking_blocks"] = thinking_blocks
    return message


def translate_response(
    payload: JSON, public_model: str, reply: str = REPLY_DEFAULT
) -> tuple[JSON, Usage]:
    """An OpenAI `chat.completion` and its usage for an Anthropic `message` body (its thinking
    shown as `reply` says: anthropic_thinking.REPLY_*)."""
    check_message(payload)
    content = payload["content"]
    usage = billed_usage(payload)
    message = _message(content, reply)
    if refusal := refusal_words(payload.get("stop_reason"), payload.get("stop_details")):
        message["refusal"] = refusal  # OpenAI's field (the finish reason says content_filter)
    completion: JSON = {
        "id": completion_id(payload.get("id")),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": public_model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason(payload.get("stop_reason")),
            }
        ],
        "usage": usage.openai_usage(),
    }
    return completion, usage


def anthropic_error(payload: bytes) -> dict[str, Any] | None:
    """The `error` object of Anthropic's error body (`{"type":"error","error":{"type",
    "message"}}`) when it has a message; None for any other body."""
    try:
        body = loads(payload)
    except NOT_JSON:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) and isinstance(error.get("message"), str) else None


def error_message(status: int, payload: bytes) -> str:
    """Anthropic's own error message (`{"type":"error","error":{"type","message"}}`) if any."""
    error = anthropic_error(payload)
    if error is not None:
        kind = error.get("type")
        text = f"{kind}: {error['message']}" if isinstance(kind, str) else error["message"]
        return f"Anthropic API error {status}: {text[:MAX_ERROR_CHARS]}"
    text = page_text(payload)  # not Anthropic's error: a proxy's page by its title, a text
    if text and not text.startswith("<"):  # (markup without a title says nothing)
        return f"Anthropic API error {status}: {text}"
    return f"Anthropic API error {status}"
