"""A Responses request refused by a check of the chat path it is translated to (the chat or
Anthropic adapter) names the Responses fields the client sent, not the chat fields it never
saw (`max_completion_tokens`, `messages[0]`, `reasoning_effort`, `response_format`)."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.fakes.anthropic_upstream import Reply as AnthropicReply
from tests.responses.conftest import ANTHROPIC_MODEL, ResponsesBox

CASES = [
    ({"reasoning": {"effort": "high"}, "max_output_tokens": 500}, "max_output_tokens"),
    ({"input": ""}, "input"),
    ({"input": [{"role": "assistant", "content": "Hello"}, {"role": "user", "content": "x"}]},
     "input"),
]  # fmt: skip


@pytest.mark.parametrize(("fields", "param"), CASES)
def test_chat_path_refusals_name_the_responses_fields(
    fresh: ResponsesBox, fields: dict[str, Any], param: str
) -> None:
    _, key = fresh.new_key()
    body: Any = {"model": ANTHROPIC_MODEL, "input": "Hi"} | fields
    with pytest.raises(openai.BadRequestError) as caught:
        fresh.openai(key).responses.create(**body)
    error = caught.value.body
    assert isinstance(error, dict) and error["param"] == param
    for chat_name in ("max_completion_tokens", "messages[", "reasoning_effort", "response_format"):
        assert chat_name not in error["message"]
    assert fresh.fake.requests == []


def test_claudes_context_overflow_names_the_input(fresh: ResponsesBox) -> None:
    """Anthropic's "prompt is too long" is OpenAI's context_length_exceeded (Codex acts on the
    code) with `param` the field the client sent, `input`: it named the chat path's `messages`."""
    _, key = fresh.new_key()
    too_long = "prompt is too long: 210000 tokens > 200000 maximum"
    fresh.fake.script(AnthropicReply.error(400, "invalid_request_error", too_long))
    with pytest.raises(openai.BadRequestError) as caught:
        fresh.openai(key).responses.create(model=ANTHROPIC_MODEL, input="Hi")
    error = caught.value.body
    assert isinstance(error, dict) and error["code"] == "context_length_exceeded"
    assert error["param"] == "input" and too_long in error["message"]
