"""Anthropic-defined client tools (computer use, text editor, bash) on /v1/chat/completions to
an `openai` provider that fronts Claude (LiteLLM takes them in chat's `tools`, in Anthropic's
shape, and sends them on as Anthropic's own): Anthropic adds each one's definition and a system
prompt that their few bytes in the body do not show. The hold reserves them, as /v1/messages'
does, or the request is charged less than the provider counted (the rest the operator's loss)."""

from __future__ import annotations

from typing import Any

import pytest

from codelace_box.gateway.metering import input_token_bound
from codelace_box.jsonwire import dumps
from tests.fakes.anthropic_tools import DEFINED_TOOLS, DEFINED_TOOLS_TOKENS
from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.gateway.conftest import IN_PRICE, MODEL, NANOS, OUT_PRICE, Box, BoxFactory, cost_nanos

pytestmark = pytest.mark.timeout(120)
# LiteLLM's documented shape for chat (docs.litellm.ai/docs/completion/computer_use).
TOOLS = DEFINED_TOOLS
DOCUMENTED = DEFINED_TOOLS_TOKENS
CAP = 10


def chat_body(tools: list[dict[str, Any]] = TOOLS) -> dict[str, Any]:
    return {"model": MODEL, "max_tokens": CAP, "tools": tools,
            "messages": [{"role": "user", "content": "Take a screenshot"}]}  # fmt: skip


@pytest.fixture(scope="module")
def box(box_factory: BoxFactory) -> Box:
    return box_factory()


def test_the_chat_bound_covers_what_anthropic_adds_for_its_tools() -> None:
    sent = chat_body()
    assert input_token_bound(len(dumps(sent)), sent, 200_000) >= DOCUMENTED + len(dumps(sent))


def test_function_tools_add_nothing_to_the_chat_bound() -> None:
    function: dict[str, Any] = {"type": "function", "function": {"name": "f", "parameters": {}}}
    sent = chat_body([function, {"type": "custom", "name": "g"}])
    assert input_token_bound(len(dumps(sent)), sent, 200_000) == len(dumps(sent)) + 1000


def test_a_chat_request_with_anthropics_tools_is_charged_what_it_cost(
    box: Box, fake: FakeOpenAI
) -> None:
    """The provider counts the body's text and what Anthropic adds for the three tools, and
    the whole cap of output: the charge is its count, within the hold, no loss logged."""
    email, key = box.new_user("1")
    sent = chat_body()
    prompt = len(dumps(sent)) + DOCUMENTED
    fake.push(Reply(content="Taking it.", prompt_tokens=prompt, completion_tokens=CAP))
    with box.http(key) as http:
        answer = http.post("/v1/chat/completions", json=sent)
    assert answer.status_code == 200, answer.text
    row = box.settled_row(answer.headers["x-request-id"])
    cost = cost_nanos(prompt, CAP, IN_PRICE, OUT_PRICE)
    assert (row["input_tokens"], row["cost_nanos"]) == (prompt, cost)
    assert cost <= row["hold_nanos"]
    assert box.balance(email) == (NANOS - cost, 0)
    assert "operator's loss" not in box.server.log_text()
