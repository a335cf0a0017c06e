"""/v1/messages to an `openai` provider: the upstream's refusals in the words Anthropic's own
API uses where a client acts on them (Claude Code compacts on "prompt is too long" and lowers
max_tokens on "input length and `max_tokens` exceed context limit")."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.openai_upstream import Reply
from tests.messages.conftest import NEEDS_SDK, OPENAI_ALIAS, MessagesBox
from tests.messages.test_claude_code import CLAUDE, claude_env

pytestmark = NEEDS_SDK

# Claude Code's own parsers of Anthropic's two context errors (from its cli bundle, 2.1)
PROMPT_TOO_LONG_RE = re.compile(r"prompt is too long[^0-9]*(\d+)\s*tokens?\s*>\s*(\d+)", re.I)
MAX_TOKENS_RE = re.compile(
    r"input length and `max_tokens` exceed context limit: (\d+) \+ (\d+) > (\d+)"
)

OPENAI_OVERFLOW = (
    "This model's maximum context length is 128000 tokens. However, your messages resulted in "
    "130512 tokens. Please reduce the length of the messages."
)
DEEPSEEK_OVERFLOW = (
    "This model's maximum context length is 131072 tokens. However, you requested 140000 tokens "
    "(139000 in the messages, 1000 in the completion). Please reduce the length of the messages "
    "or completion."
)
COMPLETION_OVERFLOW = ("This model's maximum context length is 131072 tokens. However, you "
                       "requested 150000 tokens (120000 in the messages, 30000 in the completion)."
                       " Please reduce the length of the messages or completion.")  # fmt: skip
OPENROUTER_OVERFLOW = ("This endpoint's maximum context length is 163840 tokens. However, you "
                       "requested about 201234 tokens (200000 of text input, 1234 in the output)."
                       " Please reduce the length of either one.")  # fmt: skip
BARE_OVERFLOW = "Your input exceeds the context window of this model. Please adjust your input."
SGLANG_OVERFLOW = (
    "The input (40000 tokens) is longer than the model's context length (32768 tokens)."
)
# vLLM's and SGLang's words when the messages fit and max_tokens does not (local servers, where
# Claude Code's default max_tokens of 32000 meets a context of 32K or 64K)
VLLM_CAP_OVERFLOW = ("'max_tokens' or 'max_completion_tokens' is too large: 32000. This model's "
                     "maximum context length is 32768 tokens and your request has 5000 input "
                     "tokens (32000 > 32768 - 5000).")  # fmt: skip
SGLANG_CAP_OVERFLOW = (
    "Requested token count exceeds the model's maximum context length of 32768 tokens. You "
    "requested a total of 37000 tokens: 5000 tokens from the input messages and 32000 tokens for "
    "the completion. Please reduce the number of tokens in the input messages or the completion "
    "to fit within the limit."
)


# OpenAI's refusal of a cap past the model's output limit (gpt-4o's 16384 against Claude Code's
# 32000 or 64000), and the words of Anthropic's own that Claude Code lowers its cap on
OPENAI_CAP_TOO_LARGE = ("max_tokens is too large: 64000. This model supports at most 16384 "
                        "completion tokens, whereas you provided 64000.")  # fmt: skip
DEEPSEEK_CAP_TOO_LARGE = "Invalid max_tokens value, the valid range of max_tokens is [1, 8192]"
GROQ_CAP_TOO_LARGE = ("`max_tokens` must be less than or equal to `8192`, the maximum value for "
                      "`max_tokens` is less than the `context_window` for this model")  # fmt: skip
ANTHROPIC_CAP_RE = re.compile(
    r"^max_tokens: (\d+) > (\d+), which is the maximum allowed number of output tokens for .+$"
)


def _refusal(message: str, code: str | None = "context_length_exceeded") -> Reply:
    error = {"message": message, "type": "invalid_request_error", "param": "messages", "code": code}
    return Reply(status=400, error=error)


def _asked(box: MessagesBox, key: str, reply: Reply) -> str:
    """The message of the SDK's BadRequestError for a call the upstream refused so."""
    import anthropic

    box.openai_fake.push(reply)
    with pytest.raises(anthropic.BadRequestError) as refused:
        box.client(key).messages.create(model=OPENAI_ALIAS, max_tokens=1000,
                                        messages=[{"role": "user", "content": "x"}])  # fmt: skip
    body = refused.value.body
    assert isinstance(body, dict) and body["error"]["type"] == "invalid_request_error"
    return str(body["error"]["message"])


@pytest.mark.parametrize(
    ("reply", "tokens"),
    [
        (_refusal(OPENAI_OVERFLOW), (130512, 128000)),
        (_refusal(DEEPSEEK_OVERFLOW, None), (139000, 131072)),
        (_refusal(OPENROUTER_OVERFLOW, None), (200000, 163840)),
        (_refusal(SGLANG_OVERFLOW, None), (40000, 32768)),
    ],
)
def test_a_context_overflow_reads_as_prompt_is_too_long(
    fresh: MessagesBox, reply: Reply, tokens: tuple[int, int]
) -> None:
    _, key = fresh.new_key()
    message = _asked(fresh, key, reply)
    found = PROMPT_TOO_LONG_RE.search(message)
    assert found, message
    assert (int(found[1]), int(found[2])) == tokens
    assert reply.error is not None and reply.error["message"] in message  # the upstream's words


def test_an_overflow_without_figures_still_reads_as_prompt_is_too_long(fresh: MessagesBox) -> None:
    _, key = fresh.new_key()
    message = _asked(fresh, key, _refusal(BARE_OVERFLOW))
    assert message.lower().startswith("prompt is too long") and BARE_OVERFLOW in message


@pytest.mark.parametrize(
    ("words", "tokens"),
    [
        (COMPLETION_OVERFLOW, (120000, 30000, 131072)),
        (VLLM_CAP_OVERFLOW, (5000, 32000, 32768)),
        (SGLANG_CAP_OVERFLOW, (5000, 32000, 32768)),
    ],
)
def test_an_overflow_by_the_output_cap_asks_for_a_smaller_max_tokens(
    fresh: MessagesBox, words: str, tokens: tuple[int, int, int]
) -> None:
    """The messages fit; with max_tokens they do not: Claude Code retries with a smaller cap.
    vLLM's and SGLang's wording of it read as "prompt is too long" (Claude Code then compacted
    a conversation that fit, and asked with the same max_tokens again)."""
    _, key = fresh.new_key()
    message = _asked(fresh, key, _refusal(words, None))
    found = MAX_TOKENS_RE.search(message)
    assert found, message
    assert tuple(int(n) for n in found.groups()) == tokens
    assert words in message  # the upstream's words


@pytest.mark.parametrize(
    ("words", "caps"),
    [
        (OPENAI_CAP_TOO_LARGE, (64000, 16384)),
        (DEEPSEEK_CAP_TOO_LARGE, (1000, 8192)),
        (GROQ_CAP_TOO_LARGE, (1000, 8192)),
    ],
)
def test_a_cap_past_the_models_output_limit_reads_as_anthropics(
    fresh: MessagesBox, words: str, caps: tuple[int, int]
) -> None:
    """Claude Code lowers max_tokens on Anthropic's words for it (a cap past the model's
    output limit); on OpenAI's or DeepSeek's it asked again with the same cap, refused every
    time; Groq's, naming the context window, read as "prompt is too long" (Claude Code
    compacted). (DeepSeek and Groq name no cap asked for: the one sent, 1000 here.)"""
    _, key = fresh.new_key()
    message = _asked(fresh, key, _refusal(words, "invalid_value"))
    found = ANTHROPIC_CAP_RE.match(message)
    assert found, message
    assert (int(found[1]), int(found[2])) == caps and words in message


def test_other_refusals_keep_their_words(fresh: MessagesBox) -> None:
    _, key = fresh.new_key()
    words = "Invalid 'tools[0].function.name': string does not match pattern."
    message = _asked(fresh, key, _refusal(words, "invalid_value"))
    assert message == words


def _claude(box: MessagesBox, home: Path, key: str) -> Any:
    """`claude -p hello` on the OpenAI model; its JSON result (whatever its exit status)."""
    home.mkdir()
    env = {**claude_env(box, home), "ANTHROPIC_AUTH_TOKEN": key}
    assert CLAUDE is not None
    done = subprocess.run(
        [CLAUDE, "-p", "hello", "--model", OPENAI_ALIAS, "--output-format", "json"],
        env=env, cwd=home, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    return json.loads(done.stdout)


@pytest.mark.skipif(CLAUDE is None, reason="Claude Code is not installed")
def test_claude_code_reads_the_overflow_as_its_prompt_too_long(
    fresh: MessagesBox, tmp_path: Path
) -> None:
    _, key = fresh.new_key()
    fresh.openai_fake.push(_refusal(OPENAI_OVERFLOW))
    answer = _claude(fresh, tmp_path / "home", key)
    assert answer["terminal_reason"] == "prompt_too_long", answer
    assert "130512" in answer["result"] and "128000" in answer["result"]


@pytest.mark.skipif(CLAUDE is None, reason="Claude Code is not installed")
@pytest.mark.parametrize(
    ("words", "room"),
    [
        (COMPLETION_OVERFLOW, 131072 - 120000),
        (VLLM_CAP_OVERFLOW, 32768 - 5000),
        (OPENAI_CAP_TOO_LARGE, 16384),
    ],
)
def test_claude_code_asks_again_with_a_smaller_max_tokens(
    fresh: MessagesBox, tmp_path: Path, words: str, room: int
) -> None:
    _, key = fresh.new_key()
    fresh.openai_fake.push(_refusal(words, None), Reply(content="Fits now."))
    answer = _claude(fresh, tmp_path / "home", key)
    assert answer["result"] == "Fits now.", answer
    caps = [r.body.get("max_completion_tokens") or r.body["max_tokens"]
            for r in fresh.openai_fake.requests]  # fmt: skip
    assert len(caps) == 2 and caps[1] <= room < caps[0]
