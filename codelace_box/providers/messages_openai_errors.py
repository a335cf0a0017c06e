"""An `openai` provider's context-window and output-cap refusals in Anthropic's own words.

Claude Code acts on three of Anthropic's 400s by their message: "prompt is too long: N tokens >
M maximum" (it compacts the conversation), "input length and `max_tokens` exceed context
limit: I + O > L" and "max_tokens: O > M, which is the maximum allowed number of output tokens
for <model>" (it asks again with a smaller max_tokens; OpenAI says the last "max_tokens is too
large: O. This model supports at most M completion tokens", gpt-4o's 16384 against Claude
Code's 32000 or 64000, DeepSeek "the valid range of max_tokens is [1, M]", Groq "`max_tokens`
must be less than or equal to `M`", and Claude Code sent the same cap again). An
OpenAI-compatible server words the same refusal its own way (OpenAI, DeepSeek, vLLM, SGLang,
OpenRouter, Groq, Mistral...): it is reworded here, its figures kept where the server gave
them, the server's words after. Pure: no I/O.
"""

from __future__ import annotations

import re

from codelace_box.jsonwire import NOT_JSON, loads

_LIMIT_RE = re.compile(
    r"maximum context length is (\d+)|(\d+) maximum context length|"
    r"context (?:window|length|size) (?:of|is) (\d+)|context length \((\d+) tokens\)",
    re.IGNORECASE,
)
_INPUT_RE = re.compile(
    r"(\d+) (?:in the messages|of text input)|messages resulted in (\d+)|"
    r"request has (\d+) input tokens|prompt contains (\d+) tokens|"
    r"(\d+) tokens from the input|input \((\d+) tokens\)",  # SGLang's
    re.IGNORECASE,
)
# The output cap asked for: OpenAI's and DeepSeek's "N in the completion", vLLM's "'max_tokens'
# ... is too large: N", SGLang's "N tokens for the completion"
_OUTPUT_RE = re.compile(
    r"(\d+) in the (?:completion|output)|is too large: (\d+)|(\d+) tokens for the completion",
    re.IGNORECASE,
)
_TOTAL_RE = re.compile(r"requested (?:about )?(\d+) tokens", re.IGNORECASE)
_OVERFLOW_RE = re.compile(
    r"context[ _](?:length|window|size)|maximum context|too many tokens|prompt is too long",
    re.IGNORECASE,
)


def _first(pattern: re.Pattern[str], text: str) -> int | None:
    found = pattern.search(text)
    if found is None:
        return None
    return int(next(group for group in found.groups() if group is not None))


def _code(payload: bytes) -> str:
    try:
        body = loads(payload)
    except NOT_JSON:
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else ""


def is_overflow(payload: bytes, message: str) -> bool:
    """Whether an upstream's 400 says the request does not fit the model's context window."""
    return _code(payload) == "context_length_exceeded" or bool(_OVERFLOW_RE.search(message))


# A cap past the model's output limit, the cap asked for (`asked`, where named) and the limit:
# OpenAI's words, DeepSeek's ("the valid range of max_tokens is [1, 8192]") and Groq's ("must be
# less than or equal to `8192`, ... the `context_window` ...": read before an overflow's words)
_CAP_RES = (
    re.compile(r"max_(?:completion_)?tokens'? is too large: (?P<asked>\d+)\. This model "
               r"supports at most (?P<limit>\d+) completion tokens", re.IGNORECASE),
    re.compile(r"valid range of max_(?:completion_)?tokens is \[1, ?(?P<limit>\d+)\]", re.I),
    re.compile(r"max_(?:completion_)?tokens`? must be less than or equal to `?(?P<limit>\d+)",
               re.IGNORECASE),
)  # fmt: skip


def in_anthropic_words(status: int, payload: bytes, message: str, sent_cap: int = 0) -> str:
    """An upstream's refusal (`message`, of `payload`) in Anthropic's words where Claude Code
    acts on them: a cap past the model's output limit (`sent_cap`: the cap sent, where the
    words name none), a context overflow; else as it is."""
    if status != 400:
        return message
    for pattern in _CAP_RES:
        if (cap := pattern.search(message)) is not None:
            asked = cap.groupdict().get("asked") or sent_cap
            return (f"max_tokens: {asked} > {cap['limit']}, which is the maximum allowed number "
                    f"of output tokens for this model (the upstream said: {message})")  # fmt: skip
    return anthropic_overflow(message) if is_overflow(payload, message) else message


def anthropic_overflow(message: str) -> str:
    """Anthropic's message for a context overflow an OpenAI-compatible server worded so: the
    output cap's when the messages alone fit, else the prompt's; the server's words after."""
    limit = _first(_LIMIT_RE, message)
    prompt, output = _first(_INPUT_RE, message), _first(_OUTPUT_RE, message)
    said = f" (the upstream said: {message})"
    if limit is not None and prompt is not None and output is not None and prompt < limit:
        return (f"input length and `max_tokens` exceed context limit: {prompt} + {output} > "
                f"{limit}, decrease input length or `max_tokens` and try again{said}")  # fmt: skip
    prompt = prompt if prompt is not None else _first(_TOTAL_RE, message)
    if limit is not None and prompt is not None:
        return f"prompt is too long: {prompt} tokens > {limit} maximum{said}"
    return f"prompt is too long{said}"
