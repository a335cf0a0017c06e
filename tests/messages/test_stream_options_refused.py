"""A stream to an `openai` provider asks for its usage with `stream_options`, which the box
adds; Mistral's API refuses the field (422 "extra_forbidden", "Extra inputs are not
permitted") and gives the usage in its last chunk anyway. The stream is asked again without
it, the provider is sent it no more for a while, and the call is billed the usage Mistral
gave. A client's own stream_options (/v1/chat/completions) stay theirs: the refusal is relayed."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.fakes.openai_upstream import Reply
from tests.messages.conftest import NEEDS_SDK, OPENAI_MODEL, MessagesBox
from tests.support import TLS

pytestmark = NEEDS_SDK

DETAIL = [{"type": "extra_forbidden", "loc": ["body", "stream_options", "include_usage"],
           "msg": "Extra inputs are not permitted", "input": True}]  # fmt: skip
REFUSAL = json.dumps({"object": "error", "message": {"detail": DETAIL},
                      "type": "invalid_request_error", "param": None, "code": None})  # fmt: skip
USAGE = {"prompt_tokens": 20, "total_tokens": 27, "completion_tokens": 7}
ASK = [{"role": "user", "content": "hi"}]


def _mistral(text: str) -> Reply:
    """Mistral's stream: its usage on the last chunk, unasked."""
    base = {"id": "5c1e", "object": "chat.completion.chunk", "created": 1, "model": "mistral-m"}

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return f"data: {json.dumps(base | {'choices': [choice]} | extra)}\n\n".encode()

    last = chunk({"content": ""}, "stop", usage=USAGE)
    return Reply(
        raw=[chunk({"role": "assistant"}), chunk({"content": text}), last, b"data: [DONE]\n\n"]
    )


def test_a_server_that_refuses_stream_options_streams_without_them(fresh: MessagesBox) -> None:
    fresh.openai_fake.field_refusals["stream_options"] = (422, REFUSAL)
    fresh.openai_fake.push(_mistral("Bonjour."), _mistral("Encore."))
    email, key = fresh.new_key()
    client = fresh.client(key)
    try:
        with client.messages.stream(model=OPENAI_MODEL, max_tokens=50, messages=ASK) as stream:
            message = stream.get_final_message()
        assert message.content[0].text == "Bonjour."
        assert (message.usage.input_tokens, message.usage.output_tokens) == (20, 7)
        sent = [r.body for r in fresh.openai_fake.requests]
        assert len(sent) == 2 and "stream_options" in sent[0] and "stream_options" not in sent[1]
        chat = {"model": OPENAI_MODEL, "messages": ASK, "stream": True}
        answer = httpx.post(f"{fresh.server.base_url}/v1/chat/completions", json=chat,
                            headers={"authorization": f"Bearer {key}"}, timeout=30,
                            verify=TLS)  # fmt: skip
        assert answer.status_code == 200 and "Encore." in answer.text
        assert len(fresh.openai_fake.requests) == 3  # remembered: no second refusal
        row = fresh.usage_rows(email)[-1]
        assert (row["input_tokens"], row["output_tokens"]) == (20, 7)
    finally:
        fresh.server.stop()  # forget what this provider refused, for the other tests
        fresh.server.start()


def test_a_clients_own_stream_options_stay_its_own(fresh: MessagesBox) -> None:
    fresh.openai_fake.field_refusals["stream_options"] = (422, REFUSAL)
    _, key = fresh.new_key()
    chat = {"model": OPENAI_MODEL, "messages": ASK, "stream": True,
            "stream_options": {"include_usage": True}}  # fmt: skip
    answer = httpx.post(f"{fresh.server.base_url}/v1/chat/completions", json=chat,
                        headers={"authorization": f"Bearer {key}"}, timeout=30,
                        verify=TLS)  # fmt: skip
    assert answer.status_code == 422 and "stream_options" in answer.text
    assert len(fresh.openai_fake.requests) == 1


@pytest.fixture(autouse=True)
def _no_refusals(fresh: MessagesBox) -> Any:
    yield
    fresh.openai_fake.field_refusals.clear()


def test_a_server_that_refuses_user_is_asked_again_without_claude_codes_user_id(
    fresh: MessagesBox,
) -> None:
    """Claude Code always sends metadata.user_id, which goes to an OpenAI model as `user`;
    Mistral refuses that field (422 extra_forbidden) as well."""
    detail = [{"type": "extra_forbidden", "loc": ["body", "user"],
               "msg": "Extra inputs are not permitted", "input": "u-1"}]  # fmt: skip
    refusal = json.dumps({"object": "error", "message": {"detail": detail}, "param": None,
                          "type": "invalid_request_error", "code": None})  # fmt: skip
    fresh.openai_fake.field_refusals["user"] = (422, refusal)
    fresh.openai_fake.push(Reply(content="first"), Reply(content="second"))
    _, key = fresh.new_key()
    client = fresh.client(key)
    ask: dict[str, Any] = {"model": OPENAI_MODEL, "max_tokens": 50, "messages": ASK,
                           "metadata": {"user_id": "u-1"}}  # fmt: skip
    try:
        assert client.messages.create(**ask).content[0].text == "first"
        sent = [r.body for r in fresh.openai_fake.requests]
        assert len(sent) == 2 and sent[0]["user"] == "u-1" and "user" not in sent[1]
        assert client.messages.create(**ask).content[0].text == "second"
        assert len(fresh.openai_fake.requests) == 3  # remembered: no second refusal
    finally:
        fresh.server.stop()  # forget what this provider refused, for the other tests
        fresh.server.start()


def _refusing(field: str, where: list[Any]) -> tuple[int, str]:
    detail = [{"type": "extra_forbidden", "loc": ["body", *where, field],
               "msg": "Extra inputs are not permitted", "input": "x"}]  # fmt: skip
    return 422, json.dumps({"object": "error", "message": {"detail": detail}, "param": None,
                            "type": "invalid_request_error", "code": None})  # fmt: skip


def test_reasoning_handed_back_is_left_out_for_a_server_that_refuses_it(
    fresh: MessagesBox,
) -> None:
    """The model's own reasoning (an unsigned thinking block) goes back on a turn that called
    tools as `reasoning_content`, which DeepSeek demands and Mistral refuses (422)."""
    fresh.openai_fake.field_refusals["reasoning_content"] = _refusing(
        "reasoning_content", ["messages", 1, "assistant"]
    )
    fresh.openai_fake.push(Reply(content="first"), Reply(content="second"))
    _, key = fresh.new_key()
    use = {"type": "tool_use", "id": "abcDEF123", "name": "Read", "input": {"path": "a"}}
    turn = [{"type": "thinking", "thinking": "Read it.", "signature": ""}, use]
    result = [{"type": "tool_result", "tool_use_id": "abcDEF123", "content": "text of a"}]
    history = [*ASK, {"role": "assistant", "content": turn}, {"role": "user", "content": result}]
    tools = [{"name": "Read", "input_schema": {"type": "object"}}]
    ask: dict[str, Any] = {"model": OPENAI_MODEL, "max_tokens": 50, "messages": history,
                           "tools": tools}  # fmt: skip
    client = fresh.client(key)
    try:
        assert client.messages.create(**ask).content[0].text == "first"
        sent = [r.body["messages"][1] for r in fresh.openai_fake.requests]
        assert len(sent) == 2 and sent[0]["reasoning_content"] == "Read it."
        assert "reasoning_content" not in sent[1] and sent[1]["tool_calls"]
        assert client.messages.create(**ask).content[0].text == "second"
        assert len(fresh.openai_fake.requests) == 3  # remembered: no second refusal
    finally:
        fresh.server.stop()  # forget what this provider refused, for the other tests
        fresh.server.start()


def test_claude_codes_stream_to_mistral_drops_all_it_refuses(fresh: MessagesBox) -> None:
    """Claude Code's stream (thinking, metadata.user_id) to a Mistral model without reasoning:
    Mistral refuses each field it does not take (422, as long as one is left); the stream goes
    on without all of them, and its usage (Mistral's last chunk) is the one billed."""
    fields = ("reasoning_effort", "stream_options", "user")
    for name in fields:
        fresh.openai_fake.field_refusals[name] = _refusing(name, [])
    fresh.openai_fake.push(_mistral("Bonjour."))
    _, key = fresh.new_key()
    ask: dict[str, Any] = {"model": OPENAI_MODEL, "max_tokens": 2000, "messages": ASK,
                           "metadata": {"user_id": "u-1"}}  # fmt: skip
    thinking = {"thinking": {"type": "adaptive"}}
    try:
        with fresh.client(key).messages.stream(**ask, extra_body=thinking) as stream:
            message = stream.get_final_message()
        assert message.content[-1].text == "Bonjour." and message.usage.output_tokens == 7
        assert len(fresh.openai_fake.requests) == 4  # one field fewer each time
        assert not set(fields) & set(fresh.openai_fake.requests[-1].body)
    finally:
        fresh.server.stop()  # forget what this provider refused, for the other tests
        fresh.server.start()
