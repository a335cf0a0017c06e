"""The `usage` object of a Chat Completions answer or stream chunk, read as the box bills it:
OpenAI's counts, and where OpenAI-compatible servers put them otherwise (Groq's stream usage in
`x_groq`, Moonshot's inside the stream's last choice, DeepSeek's cache reads as
`prompt_cache_hit_tokens` and Moonshot's as a top-level `cached_tokens`, thinking that proxies
in front of Gemini leave out of `completion_tokens`, LocalAI's all-zero usage that is no
count). The provider's own bill (OpenRouter's `cost`) is never shown to the user. Pure code."""

from __future__ import annotations

from typing import Any

from codelace_box.providers.base import JSON, Usage

_STANDARD_USAGE = ("prompt_tokens", "completion_tokens", "total_tokens")


def usage_from(raw: Any) -> Usage | None:
    """Our Usage from an OpenAI `usage` object; None when absent or unusable. All zeros is no
    count (no call has an empty prompt): LocalAI ends a stream with tools so, after the answer;
    nor is a prompt count of zero, which Ollama gives for a prompt it had cached: the usage is
    estimated then, its input the box's count (ChatCall.with_input)."""
    if not isinstance(raw, dict):
        return None
    prompt, completion = raw.get("prompt_tokens"), raw.get("completion_tokens")
    if type(prompt) is not int or type(completion) is not int:  # (a bool is no count)
        return None
    if prompt <= 0 and completion <= 0:
        return None
    details = {k: v for k, v in raw.items() if k not in _STANDARD_USAGE and not _private(k)}
    _standard_cache_reads(details)
    output = _with_reasoning(raw, prompt, completion if completion > 0 else 0)  # (not max():
    usage = Usage(prompt if prompt > 0 else 0, output, details)  # a builtin call, 6x the cost)
    usage.estimated = prompt <= 0  # no prompt count: the input is the box's (with_input)
    set_cache_tokens(usage, details.get("prompt_tokens_details"))
    return usage


def _with_reasoning(raw: JSON, prompt: int, completion: int) -> int:
    """The output tokens of a usage: `completion_tokens`, which in OpenAI's usage holds the
    reasoning too (`completion_tokens_details.reasoning_tokens` is a part of it). Proxies in
    front of Gemini (CLIProxyAPI, new-api, ...) leave the thinking out of it and count it only
    as reasoning_tokens, with total_tokens counting both: the thinking is added then (it is
    output, billed as such), which shows as reasoning above completion or as a total of
    prompt, completion and reasoning."""
    details = raw.get("completion_tokens_details")
    reasoning = details.get("reasoning_tokens") if isinstance(details, dict) else None
    if type(reasoning) is not int or reasoning <= 0:
        return completion
    total = raw.get("total_tokens")
    if reasoning > completion or (type(total) is int and total == prompt + completion + reasoning):
        return completion + reasoning
    return completion


def _standard_cache_reads(details: JSON) -> None:
    """DeepSeek counts its cache reads as `prompt_cache_hit_tokens` at the top of `usage`
    (beside `prompt_cache_miss_tokens`), Moonshot (Kimi) as `cached_tokens` at the top, not
    as OpenAI's `prompt_tokens_details.cached_tokens`: when the latter is absent (or a mere 0),
    it is set from the former, so they are billed (and shown in every dialect) as the cache
    reads they are."""
    hits = details.get("prompt_cache_hit_tokens")
    if hits is None:
        hits = details.get("cached_tokens")
    prompt_details = details.get("prompt_tokens_details")
    prompt_details = prompt_details if isinstance(prompt_details, dict) else {}
    cached = prompt_details.get("cached_tokens")
    if type(hits) is int and hits > 0 and (cached is None or (type(cached) is int and cached == 0)):
        details["prompt_tokens_details"] = {**prompt_details, "cached_tokens": hits}


def chunk_usage(chunk: JSON) -> Any:
    """The usage object of a stream chunk: its `usage`, or Groq's, which rides in the last
    chunk under `x_groq` (with Groq's timings) and not at the top, or Moonshot's (Kimi's),
    inside the one choice of the last chunk (`choices[0].usage`)."""
    usage = chunk.get("usage")
    if usage is None and isinstance(chunk.get("x_groq"), dict):
        usage = chunk["x_groq"].get("usage")
    if usage is None and has_choice_usage(chunk):
        usage = chunk["choices"][0]["usage"]
    return usage


def has_choice_usage(chunk: JSON) -> bool:
    """Whether a chunk of one choice carries its usage inside that choice (Moonshot's)."""
    choices = chunk.get("choices")
    if type(choices) is not list or len(choices) != 1 or type(choices[0]) is not dict:
        return False
    return choices[0].get("usage") is not None


def set_cache_tokens(usage: Usage, prompt_details: Any) -> None:
    """The cache part of a usage's input tokens, from OpenAI's prompt details (Responses'
    `input_tokens_details` alike): `cached_tokens` are cache reads, `cache_write_tokens`
    (OpenRouter's, the box's own answers') cache writes, both parts of the prompt tokens, so
    neither together may exceed them."""
    details = prompt_details if isinstance(prompt_details, dict) else {}
    reads, writes = details.get("cached_tokens"), details.get("cache_write_tokens")
    if isinstance(reads, int) and not isinstance(reads, bool):
        usage.cache_read_tokens = min(max(reads, 0), usage.input_tokens)
    if isinstance(writes, int) and not isinstance(writes, bool):
        room = usage.input_tokens - usage.cache_read_tokens
        usage.cache_write_tokens = min(max(writes, 0), room)


def only_hour_caching(body: JSON) -> bool:
    """Whether a Chat Completions body marks something for the prompt cache (OpenRouter's
    `cache_control`: at the top, on a message, a content part or a tool) and every mark asks
    `ttl: "1h"`: then every cache write it causes lasts an hour. A mark without a ttl lasts 5
    minutes; with both lifetimes, which unsplit writes are which cannot be told."""
    marks = [body.get("cache_control")]
    for message in _dicts(body.get("messages")):
        marks.append(message.get("cache_control"))
        marks.extend(part.get("cache_control") for part in _dicts(message.get("content")))
    marks.extend(tool.get("cache_control") for tool in _dicts(body.get("tools")))
    marks = [mark for mark in marks if mark is not None]
    return bool(marks) and all(isinstance(m, dict) and m.get("ttl") == "1h" for m in marks)


def _dicts(items: Any) -> list[JSON]:
    """The objects of a list (none for anything else)."""
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def _private(name: str) -> bool:
    """Usage keys that tell the operator's own bill (OpenRouter's `cost`, `cost_details`,
    `is_byok`): never shown to the user, whose price is `cost_usd`."""
    return "cost" in name.lower() or name == "is_byok"
