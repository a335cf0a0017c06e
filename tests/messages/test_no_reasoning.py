"""Claude Code always asks for (adaptive) thinking; to an `openai` model that does not reason
(gpt-4o, gpt-4.1), which refuses `reasoning_effort` with a 400, the box asks once more without
it: the call succeeds, is held and charged once. A client's own reasoning_effort on
/v1/chat/completions is theirs, and its 400 is relayed."""

from __future__ import annotations

import json

import openai
import pytest

from codelace_box.gateway.upstream import UpstreamRejected, refuses_effort
from tests.fakes.openai_upstream import NO_REASONING, NO_REASONING_LEGACY, Reply
from tests.messages.conftest import (
    NEEDS_SDK,
    OPENAI_ALIAS,
    OPENAI_MODEL,
    OPENAI_PRICES,
    MessagesBox,
    usd_nanos,
)

pytestmark = NEEDS_SDK

UPSTREAM = "gpt-5.4-mini"  # OPENAI_MODEL's upstream name, made to refuse reasoning here
OLLAMA = '"llama3.1:8b" does not support thinking'  # Ollama reads reasoning_effort as `think`
THINKING = {"thinking": {"type": "adaptive"}, "output_config": {"effort": "high"}}
# Mistral's 422 for a field a model does not take (pydantic's extra_forbidden)
MISTRAL = json.dumps({"object": "error", "message": {"detail": [
    {"type": "extra_forbidden", "loc": ["body", "reasoning_effort"],
     "msg": "Extra inputs are not permitted", "input": "high"}]},
    "type": "invalid_request_error", "param": None, "code": None})  # fmt: skip


def efforts(box: MessagesBox) -> list[object]:
    """The reasoning_effort of each chat completion the fake OpenAI received, in order."""
    return [r.body.get("reasoning_effort") for r in box.openai_fake.requests]


@pytest.mark.parametrize("refusal", [NO_REASONING, NO_REASONING_LEGACY, OLLAMA])
@pytest.mark.parametrize("stream", [False, True])
def test_claude_code_thinking_on_a_model_that_does_not_reason(
    fresh: MessagesBox, refusal: str, stream: bool
) -> None:
    email, key = fresh.new_key()
    fresh.openai_fake.no_reasoning[UPSTREAM] = refusal
    fresh.openai_fake.push(Reply(content="No thinking here.", prompt_tokens=40,
                                 completion_tokens=5))  # fmt: skip
    before, _ = fresh.balance_nanos(email)
    asked = {"model": OPENAI_ALIAS, "max_tokens": 2000,
             "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip
    client = fresh.client(key)
    if stream:
        with client.messages.stream(**asked, extra_body=THINKING) as events:
            message = events.get_final_message()
    else:
        message = client.messages.create(**asked, extra_body=THINKING)
    assert [b.text for b in message.content if b.type == "text"] == ["No thinking here."]
    assert efforts(fresh) == ["high", None]  # refused once, then asked again without it
    assert fresh.openai_fake.requests[1].body["messages"] == [{"role": "user", "content": "hi"}]
    after, held = fresh.balance_nanos(email)
    cost = usd_nanos((40, OPENAI_PRICES["in"]), (5, OPENAI_PRICES["out"]))
    assert (before - after, held) == (cost, 0)
    rows = fresh.usage_rows(email)
    assert len(rows) == 1 and (rows[0]["model"], rows[0]["status"]) == (OPENAI_MODEL, "ok")


def test_claude_code_thinking_on_a_mistral_model_that_does_not_reason(fresh: MessagesBox) -> None:
    """Mistral refuses reasoning_effort on its models without it with a 422 (extra_forbidden)."""
    fresh.openai_fake.field_refusals["reasoning_effort"] = (422, MISTRAL)
    fresh.openai_fake.push(Reply(content="Bonjour."))
    _, key = fresh.new_key()
    asked = {"model": OPENAI_ALIAS, "max_tokens": 2000,
             "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip
    try:
        message = fresh.client(key).messages.create(**asked, extra_body=THINKING)
    finally:
        fresh.openai_fake.field_refusals.clear()
    assert [b.text for b in message.content if b.type == "text"] == ["Bonjour."]
    assert efforts(fresh) == ["high", None]


def test_only_one_more_try_and_other_400s_are_relayed(fresh: MessagesBox) -> None:
    """A 400 about something else is the request's fault: relayed, nothing retried, nothing
    charged; so is a value the model refuses (the effort level, not the field)."""
    email, key = fresh.new_key()
    before = fresh.balance_nanos(email)
    other = Reply(status=400, error={"message": "Invalid 'messages[0].content': too long.",
                                     "type": "invalid_request_error"})  # fmt: skip
    value = Reply(status=400, error={
        "message": "Unsupported value: 'reasoning_effort' does not support 'high' with this "
        "model. Supported values are: 'low' and 'medium'.", "type": "invalid_request_error",
        "code": "unsupported_value", "param": "reasoning_effort"})  # fmt: skip
    import anthropic

    for reply, text in ((other, "too long"), (value, "does not support 'high'")):
        fresh.openai_fake.reset()
        fresh.openai_fake.push(reply)
        with pytest.raises(anthropic.BadRequestError) as refused:
            fresh.client(key).messages.create(
                model=OPENAI_ALIAS, max_tokens=2000, messages=[{"role": "user", "content": "hi"}],
                extra_body=THINKING,
            )  # fmt: skip
        assert text in str(refused.value) and len(fresh.openai_fake.requests) == 1
    assert fresh.balance_nanos(email) == before
    rows = fresh.usage_rows(email)
    assert [(r["status"], r["cost_nanos"]) for r in rows] == [("error", 0)] * 2


def test_a_clients_own_reasoning_effort_gets_the_upstreams_400(fresh: MessagesBox) -> None:
    email, key = fresh.new_key()
    fresh.openai_fake.no_reasoning[UPSTREAM] = NO_REASONING
    before = fresh.balance_nanos(email)
    with pytest.raises(openai.BadRequestError) as refused:
        fresh.sdk(key).chat.completions.create(
            model=OPENAI_MODEL, messages=[{"role": "user", "content": "hi"}],
            reasoning_effort="low",
        )  # fmt: skip
    assert refused.value.status_code == 400 and NO_REASONING in str(refused.value)
    assert efforts(fresh) == ["low"]  # asked once, as the client asked it
    assert fresh.balance_nanos(email) == before
    rows = fresh.usage_rows(email)
    assert [(r["status"], r["error_code"], r["cost_nanos"]) for r in rows] == [
        ("error", "upstream_400", 0)]  # fmt: skip


@pytest.mark.parametrize(
    ("status", "message", "refused"),
    [
        (400, NO_REASONING, True),  # OpenAI now
        (400, NO_REASONING_LEGACY, True),  # OpenAI before, Azure
        (400, "`reasoning_effort` is not supported with this model", True),  # Groq, Cerebras
        (400, OLLAMA, True),
        (400, "Unrecognized request argument supplied: reasoning_effort (request id: 1)", True),
        (400, "Unsupported value: 'reasoning_effort' does not support 'none' with this model. "
         "Supported values are: 'minimal', 'low', 'medium', and 'high'.", False),  # a value
        (400, "Unrecognized request argument supplied: reasoning", False),  # another field
        (400, 'think value "medium" is not supported for this model', False),  # Ollama: a value
        (400, "Unsupported parameter: 'temperature' is not supported with this model.", False),
        (422, NO_REASONING, False),
        (422, MISTRAL, True),  # Mistral's models without it (Magistral, Large, Codestral)
        (422, MISTRAL.replace("reasoning_effort", "reasoning"), False),  # another field
        (400, "[{'type': 'extra_forbidden', 'loc': ('body', 'reasoning_effort'), "
         "'msg': 'Extra inputs are not permitted', 'input': 'high'}]", True),  # older vLLM
    ],
)  # fmt: skip
def test_which_refusals_say_the_model_takes_no_reasoning_effort(
    status: int, message: str, refused: bool
) -> None:
    assert refuses_effort(UpstreamRejected(status, message)) is refused
