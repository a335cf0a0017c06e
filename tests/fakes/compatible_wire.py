"""Streams and answers as OpenAI-compatible servers other than OpenAI write them, for the fake
OpenAI's `raw` replies (tests/fakes/openai_upstream.py): each builder returns the body's writes.

What each server does beyond OpenAI's own wire (from their sources and documentation):
- Groq: a stream's usage rides in the last chunk under `x_groq.usage` (with the
  finish_reason), with Groq's timings beside the counts; no top-level `usage`.
- DeepSeek: cache reads as `prompt_cache_hit_tokens` / `prompt_cache_miss_tokens` at the top of
  `usage`, `completion_tokens_details.reasoning_tokens`, `reasoning_content` deltas; the last
  content chunk carries the finish_reason and the usage.
- vLLM (0.11 on): every reasoning delta carries the text twice, as `reasoning` and as the
  deprecated `reasoning_content` (kept in sync for older clients).
- OpenRouter: `reasoning` deltas with `reasoning_details` (`reasoning.text` pieces with their
  `format`), `: OPENROUTER PROCESSING` comments, usage with `cost`.
- Moonshot (Kimi): cache reads as `cached_tokens` at the top of `usage`; a stream's usage
  inside the finishing choice of its last chunk (`choices[0].usage`), none at the top.
"""

from __future__ import annotations

import json
from typing import Any

BASE = {"id": "chatcmpl-compat1", "object": "chat.completion.chunk", "created": 1733000000,
        "model": "upstream-model"}  # fmt: skip
DONE = b"data: [DONE]\n\n"


def event(value: Any, head: bytes = b"data: ", end: bytes = b"\n\n") -> bytes:
    """One SSE event carrying a JSON value."""
    return head + json.dumps(value, separators=(",", ":")).encode() + end


def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    """A `chat.completion.chunk` of one choice."""
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
    return BASE | {"choices": [choice]} | extra


def text_pieces(text: str) -> list[str]:
    """The text as a server streams it: a word (with its leading space) a chunk."""
    words = text.split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


def groq_stream(text: str, prompt: int, completion: int) -> list[bytes]:
    """Groq's stream: role chunk, content, then the finish chunk with `x_groq.usage` (and no
    top-level usage), then `[DONE]`."""
    usage = {"queue_time": 0.05, "prompt_tokens": prompt, "prompt_time": 0.004,
             "completion_tokens": completion, "completion_time": 0.02,
             "total_tokens": prompt + completion, "total_time": 0.024}  # fmt: skip
    first = chunk({"role": "assistant", "content": ""}, x_groq={"id": "req_01compat"})
    body = [event(first)]
    body += [event(chunk({"content": piece})) for piece in text_pieces(text)]
    last = chunk({}, "stop", x_groq={"id": "req_01compat", "usage": usage})
    return [*body, event(last), DONE]


def deepseek_usage(prompt: int, hit: int, completion: int, reasoning: int = 0) -> dict[str, Any]:
    """DeepSeek's usage: its cache reads as `prompt_cache_hit_tokens` only."""
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion, "prompt_cache_hit_tokens": hit,
            "prompt_cache_miss_tokens": prompt - hit,
            "completion_tokens_details": {"reasoning_tokens": reasoning}}  # fmt: skip


def deepseek_stream(text: str, usage: dict[str, Any], reasoning: str = "") -> list[bytes]:
    """DeepSeek's stream: role chunk, `reasoning_content` deltas, content deltas, the finish
    reason and the usage on the last chunk, `[DONE]`."""
    body = [event(chunk({"role": "assistant", "content": None, "reasoning_content": ""}))]
    for piece in text_pieces(reasoning) if reasoning else []:
        body.append(event(chunk({"content": None, "reasoning_content": piece})))
    body += [event(chunk({"content": piece})) for piece in text_pieces(text)]
    return [*body, event(chunk({"content": ""}, "stop", usage=usage)), DONE]


def deepseek_answer(text: str, usage: dict[str, Any], reasoning: str = "") -> bytes:
    """DeepSeek's non-streamed answer."""
    message = {"role": "assistant", "content": text}
    if reasoning:
        message["reasoning_content"] = reasoning
    answer = {"id": "compat-ds-1", "object": "chat.completion", "created": 1733000000,
              "model": "deepseek-chat", "system_fingerprint": "fp_ds_compat",
              "choices": [{"index": 0, "message": message, "logprobs": None,
                           "finish_reason": "stop"}],
              "usage": usage}  # fmt: skip
    return json.dumps(answer).encode()


def vllm_reasoning_stream(reasoning: str, text: str, usage: dict[str, Any] | None) -> list[bytes]:
    """vLLM's stream for a reasoning model: each reasoning delta as `reasoning` and again as
    `reasoning_content`; the usage chunk (`choices: []`) only when it is given."""
    body = [event(chunk({"role": "assistant", "content": ""}))]
    for piece in text_pieces(reasoning):
        body.append(event(chunk({"reasoning": piece, "reasoning_content": piece})))
    body += [event(chunk({"content": piece})) for piece in text_pieces(text)]
    body.append(event(chunk({"content": ""}, "stop")))
    if usage is not None:
        body.append(event(BASE | {"choices": [], "usage": usage}))
    return [*body, DONE]


def openrouter_reasoning_stream(
    reasoning: str, text: str, usage: dict[str, Any] | None
) -> list[bytes]:
    """OpenRouter's stream of a reasoning model: a comment, `reasoning` deltas each with the
    same text again in a `reasoning.text` detail, content, the finish, the usage chunk (when
    given), `[DONE]`."""
    body = [b": OPENROUTER PROCESSING\n\n"]
    for piece in text_pieces(reasoning):
        detail = {"type": "reasoning.text", "text": piece, "format": "anthropic-claude-v1",
                  "index": 0}  # fmt: skip
        delta = {"role": "assistant", "content": "", "reasoning": piece,
                 "reasoning_details": [detail]}  # fmt: skip
        body.append(event(chunk(delta)))
    body += [event(chunk({"role": "assistant", "content": piece})) for piece in text_pieces(text)]
    body.append(event(chunk({"role": "assistant", "content": ""}, "stop")))
    if usage is not None:
        body.append(event(BASE | {"choices": [], "usage": usage}))
    return [*body, DONE]


def reasoning_apart_usage(prompt: int, answer: int, reasoning: int) -> dict[str, Any]:
    """The usage of OpenAI-compatible proxies in front of Gemini (CLIProxyAPI, new-api and
    others before their fixes): `completion_tokens` counts the answer only, the thinking is in
    `completion_tokens_details.reasoning_tokens` alone, `total_tokens` counts both."""
    return {"prompt_tokens": prompt, "completion_tokens": answer,
            "total_tokens": prompt + answer + reasoning,
            "completion_tokens_details": {"reasoning_tokens": reasoning}}  # fmt: skip


def usage_stream(text: str, usage: dict[str, Any]) -> list[bytes]:
    """OpenAI's own stream shape: role chunk, content, finish chunk, usage chunk, `[DONE]`."""
    body = [event(chunk({"role": "assistant", "content": ""}))]
    body += [event(chunk({"content": piece})) for piece in text_pieces(text)]
    body.append(event(chunk({}, "stop")))
    return [*body, event(BASE | {"choices": [], "usage": usage}), DONE]


def usage_answer(text: str, usage: dict[str, Any]) -> bytes:
    """OpenAI's own answer shape with this usage."""
    choice = {"index": 0, "message": {"role": "assistant", "content": text},
              "logprobs": None, "finish_reason": "stop"}  # fmt: skip
    return json.dumps({"id": "chatcmpl-compat2", "object": "chat.completion",
                       "created": 1733000000, "model": "upstream-model", "choices": [choice],
                       "usage": usage}).encode()  # fmt: skip


def moonshot_usage(prompt: int, cached: int, completion: int) -> dict[str, Any]:
    """Moonshot's usage: its cache reads as `cached_tokens` at the top, part of the prompt."""
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion, "cached_tokens": cached}  # fmt: skip


def moonshot_stream(text: str, usage: dict[str, Any]) -> list[bytes]:
    """Moonshot's stream: role chunk, content, then the finish chunk whose one choice carries
    the usage (`choices[0].usage`, no top-level usage), `[DONE]`."""
    body = [event(chunk({"role": "assistant", "content": ""}))]
    body += [event(chunk({"content": piece})) for piece in text_pieces(text)]
    last = chunk({}, "stop")
    last["choices"][0]["usage"] = usage
    return [*body, event(last), DONE]
