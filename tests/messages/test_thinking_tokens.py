"""The thinking tokens an `openai` upstream counts reach a Messages client as Anthropic's own.

Anthropic reports how many of the output tokens were reasoning as
`usage.output_tokens_details.thinking_tokens` (in a message's usage and in a stream's
message_delta; part of `output_tokens`, which stays the total billed). Claude Code shows it as
the thinking tokens of a turn. An OpenAI-compatible upstream counts the same as
`completion_tokens_details.reasoning_tokens`: the translation on /v1/messages gave it no
counterpart, so Claude Code showed 0 thinking tokens for a model that had reasoned. An upstream
that counts no reasoning tokens gets no such field, as before.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.fakes.openai_upstream import Reply
from tests.messages.conftest import NEEDS_SDK, OPENAI_ALIAS, MessagesBox, openai_chunk
from tests.support import TLS

pytestmark = NEEDS_SDK

REASONED = {"prompt_tokens": 10, "completion_tokens": 25, "total_tokens": 35,
            "completion_tokens_details": {"reasoning_tokens": 18}}  # fmt: skip
# A proxy in front of Gemini counts the thinking only as reasoning_tokens (total_tokens counts
# both): the output billed is completion plus reasoning, of which the reasoning is thinking.
APART = {"prompt_tokens": 10, "completion_tokens": 7, "total_tokens": 35,
         "completion_tokens_details": {"reasoning_tokens": 18}}  # fmt: skip
PLAIN = {"prompt_tokens": 10, "completion_tokens": 7, "total_tokens": 17}
BETA = {"anthropic-beta": "thinking-token-count-2026-05-13"}
THINKING = {"type": "enabled", "budget_tokens": 2048}


def _answer(usage: dict[str, Any]) -> Reply:
    message = {"role": "assistant", "content": "Hello.", "reasoning_content": "I greet back."}
    completion = {"id": "c1", "object": "chat.completion", "created": 1, "model": "m",
                  "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                  "usage": usage}  # fmt: skip
    return Reply(raw=[json.dumps(completion).encode()], content_type="application/json")


def _stream(usage: dict[str, Any]) -> Reply:
    return Reply(raw=[
        openai_chunk({"role": "assistant", "content": None, "reasoning_content": "I greet back."}),
        openai_chunk({"content": "Hello."}), openai_chunk({}, "stop"),
        openai_chunk({}, usage=usage), b"data: [DONE]\n\n",
    ])  # fmt: skip


def _asked(display: str | None, stream: bool) -> dict[str, Any]:
    thinking = THINKING | ({"display": display} if display else {})
    return {"model": OPENAI_ALIAS, "max_tokens": 4000, "stream": stream, "thinking": thinking,
            "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip


def _final_usage(box: MessagesBox, key: str, display: str | None, stream: bool) -> Any:
    """The usage of the answer as sent on the wire: the message's, or the message_delta's."""
    answer = httpx.post(f"{box.url}/v1/messages", json=_asked(display, stream), timeout=30,
                        headers={"x-api-key": key, **BETA}, verify=TLS)  # fmt: skip
    assert answer.status_code == 200, answer.text
    if not stream:
        return answer.json()["usage"]
    events = [json.loads(line[6:]) for line in answer.text.splitlines()
              if line.startswith("data: ")]  # fmt: skip
    [delta] = [event for event in events if event["type"] == "message_delta"]
    return delta["usage"]


@pytest.mark.parametrize("stream", [False, True], ids=["message", "stream"])
@pytest.mark.parametrize("display", [None, "omitted"])
@pytest.mark.parametrize("usage", [REASONED, APART], ids=["in-completion", "apart"])
def test_reasoning_tokens_are_shown_as_thinking_tokens(
    fresh: MessagesBox, stream: bool, display: str | None, usage: dict[str, Any]
) -> None:
    _, key = fresh.new_key()
    fresh.openai_fake.push(_stream(usage) if stream else _answer(usage))
    shown = _final_usage(fresh, key, display, stream)
    assert shown["output_tokens"] == 25
    assert shown["output_tokens_details"] == {"thinking_tokens": 18}


@pytest.mark.parametrize("stream", [False, True], ids=["message", "stream"])
def test_an_upstream_counting_no_reasoning_gets_no_thinking_tokens(
    fresh: MessagesBox, stream: bool
) -> None:
    _, key = fresh.new_key()
    fresh.openai_fake.push(_stream(PLAIN) if stream else _answer(PLAIN))
    shown = _final_usage(fresh, key, None, stream)
    assert shown["output_tokens"] == 7
    assert "output_tokens_details" not in shown


def test_the_anthropic_sdk_reads_the_thinking_tokens(fresh: MessagesBox) -> None:
    """As Claude Code does: from the stream's message_delta, and in the answer's usage."""
    _, key = fresh.new_key()
    client = fresh.client(key)
    fresh.openai_fake.push(_stream(REASONED))
    asked = {k: v for k, v in _asked(None, True).items() if k not in ("stream", "thinking")}
    with client.messages.stream(**asked, thinking=THINKING, extra_headers=BETA) as stream:
        deltas = [event for event in stream if event.type == "message_delta"]
    assert deltas[-1].usage.output_tokens_details.thinking_tokens == 18
    fresh.openai_fake.push(_answer(REASONED))
    message = client.messages.create(**asked, thinking=THINKING, extra_headers=BETA)
    assert message.usage.output_tokens_details.thinking_tokens == 18
