"""Which OpenAI chat completions fields an Anthropic provider honours, ignores or refuses.

A field the translation does not carry must not vanish silently when it would change the
answer (LiteLLM refuses such "unsupported params" by default; OpenAI's own API refuses unknown
ones): every top-level field is either translated (anthropic_request), refused when set to
something other than its no-op (anthropic.py), gated as a billed field (billed_fields.py), or
listed here as changing neither the answer's content nor its price. Anything else is a 400
naming the field. Pure code.
"""

from __future__ import annotations

from typing import Any

from codelace_box.errors import InvalidRequest
from codelace_box.providers.billed_fields import BILLED_FIELDS

TRANSLATED = frozenset({
    "model", "messages", "max_tokens", "max_completion_tokens", "stop", "temperature", "top_p",
    "top_k", "user", "safety_identifier", "tools", "tool_choice", "parallel_tool_calls",
    "reasoning_effort", "thinking", "reasoning", "response_format", "stream", "stream_options",
    "cache_control",
})  # fmt: skip
# refused by the adapter when set to anything but their no-op value
CHECKED = frozenset({
    "n", "logprobs", "top_logprobs", "presence_penalty", "frequency_penalty", "logit_bias",
    "functions", "function_call", "verbosity",
})  # fmt: skip
# field -> why it may be accepted and ignored (the README lists them)
IGNORED: dict[str, str] = {
    "seed": "OpenAI's best-effort determinism; Anthropic has no seed",
    "store": "OpenAI's stored completions; the box stores no conversation",
    "metadata": "tags for OpenAI's stored completions",
    "prediction": "OpenAI's predicted outputs: a latency hint, the answer is the same",
    "prompt_cache_key": "OpenAI's cache routing hint; Anthropic caches by cache_control",
    "prompt_cache_retention": "OpenAI's cache lifetime; Anthropic's is cache_control's ttl",
}
# fields other gateways take with no Anthropic counterpart here: what to send instead
HINTS: dict[str, str] = {}
KNOWN = TRANSLATED | CHECKED | set(IGNORED) | set(BILLED_FIELDS)


def check_fields(body: dict[str, Any]) -> None:
    """400 naming the first field an Anthropic provider would have to drop."""
    for name in body:
        if name in KNOWN:
            continue
        hint = HINTS.get(name, "it has no Anthropic counterpart and would change the answer")
        raise InvalidRequest(f"{name} is not supported for Anthropic models: {hint}", param=name)
    if body.get("verbosity") not in (None, "medium"):
        raise InvalidRequest(
            "verbosity other than medium is not supported for Anthropic models", param="verbosity"
        )
    top_k = body.get("top_k")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0):
        raise InvalidRequest("top_k must be an integer, 0 (no restriction) or more", param="top_k")
