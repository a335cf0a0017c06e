"""Codex always sends `reasoning.effort`; translated to Chat Completions for an `openai` model
that does not reason (gpt-4o, gpt-4.1), which refuses `reasoning_effort` with a 400, the box
asks once more without it: the response completes, held and charged once."""

from __future__ import annotations

import pytest

from tests.fakes.openai_upstream import NO_REASONING, Reply
from tests.messages.conftest import usd_nanos
from tests.responses.conftest import OPENAI_MODEL, PRICES, ResponsesBox

UPSTREAM = "gpt-5.4-mini"  # OPENAI_MODEL's upstream name, made to refuse reasoning here
REASONING = {"effort": "medium", "summary": "auto"}  # as Codex sends it


@pytest.mark.parametrize("stream", [False, True])
def test_codex_reasoning_on_a_model_that_does_not_reason(fresh: ResponsesBox, stream: bool) -> None:
    email, key = fresh.new_key()
    fresh.openai_fake.no_reasoning[UPSTREAM] = NO_REASONING
    fresh.openai_fake.push(Reply(content="Plain answer", prompt_tokens=30, completion_tokens=2))
    before, _ = fresh.balance_nanos(email)
    client = fresh.openai(key)
    asked = {"model": OPENAI_MODEL, "input": "Hi", "reasoning": REASONING, "store": False}
    if stream:
        with client.responses.stream(**asked) as events:
            kinds = [event.type for event in events]
            response = events.get_final_response()
        assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    else:
        response = client.responses.create(**asked)
    assert response.output_text == "Plain answer" and response.status == "completed"
    sent = [r.body.get("reasoning_effort") for r in fresh.openai_fake.requests]
    assert sent == ["medium", None]  # refused once, then asked again without it
    expected = usd_nanos((30, PRICES["in"]), (2, PRICES["out"]))
    after, held = fresh.balance_nanos(email)
    assert (before - after, held) == (expected, 0)
    rows = fresh.usage_rows(email)
    assert [(r["route"], r["status"], r["cost_nanos"]) for r in rows] == [
        ("/v1/responses", "ok", expected)]  # fmt: skip
    assert "takes no reasoning_effort" in fresh.server.log_text()
