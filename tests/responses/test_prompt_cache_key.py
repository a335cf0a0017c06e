"""Codex's `prompt_cache_key` (its thread id) reaches an `openai` provider's Chat Completions,
which takes it (and `safety_identifier`) as OpenAI documents them; a compatible server that
refuses such a hint as a field it does not know (Groq, Cerebras, Gemini's OpenAI endpoint,
older vLLM) is asked once more without it, and the box remembers that and sends that provider
the hint no more."""

from __future__ import annotations

import json

import pytest

from tests.fakes.openai_upstream import Reply
from tests.responses.conftest import ANTHROPIC_MODEL, OPENAI_MODEL, ResponsesBox


def _gemini(field: str) -> tuple[int, str]:
    message = f'Invalid JSON payload received. Unknown name "{field}": Cannot find field.'
    error = {"code": 400, "message": message, "status": "INVALID_ARGUMENT",
             "details": [{"@type": "type.googleapis.com/google.rpc.BadRequest",
                          "fieldViolations": [{"description": message}]}]}  # fmt: skip
    return 400, json.dumps([{"error": error}])


def _groq(field: str) -> tuple[int, str]:
    error = {"message": f"property '{field}' is unsupported", "type": "invalid_request_error"}
    return 400, json.dumps({"error": error})


def _cerebras(field: str) -> tuple[int, str]:
    return 422, json.dumps({
        "message": f"body.{field}: property 'body.{field}' is unsupported",
        "type": "invalid_request_error", "param": "validation_error", "code": "wrong_api_format",
    })  # fmt: skip


def _old_vllm(field: str) -> tuple[int, str]:
    detail = (f"[{{'type': 'extra_forbidden', 'loc': ('body', '{field}'), "
              "'msg': 'Extra inputs are not permitted', 'input': 'x'}]")  # fmt: skip
    return 400, json.dumps({"object": "error", "message": detail, "type": "BadRequestError",
                            "param": None, "code": 400})  # fmt: skip


REFUSALS = {"gemini": _gemini, "groq": _groq, "cerebras": _cerebras, "old-vllm": _old_vllm}


def test_prompt_cache_key_and_safety_identifier_reach_the_chat_upstream(
    fresh: ResponsesBox,
) -> None:
    _, key = fresh.new_key()
    fresh.openai(key).responses.create(
        model=OPENAI_MODEL, input="hi", prompt_cache_key="thread-1", safety_identifier="h-1"
    )
    sent = fresh.openai_fake.requests[-1].body
    assert (sent["prompt_cache_key"], sent["safety_identifier"]) == ("thread-1", "h-1")


@pytest.mark.parametrize("server", sorted(REFUSALS))
@pytest.mark.parametrize("field", ["prompt_cache_key", "safety_identifier"])
def test_a_server_that_refuses_the_hint_is_asked_again_without_it(
    fresh: ResponsesBox, server: str, field: str
) -> None:
    fresh.openai_fake.field_refusals[field] = REFUSALS[server](field)
    fresh.openai_fake.push(Reply(content="first"), Reply(content="second"))
    _, key = fresh.new_key()
    client = fresh.openai(key)
    hints = {"prompt_cache_key": "thread-1", "safety_identifier": "h-1"}
    try:
        first = client.responses.create(model=OPENAI_MODEL, input="hi", **hints)
        assert first.output_text == "first"
        sent = [r.body for r in fresh.openai_fake.requests]
        assert len(sent) == 2 and field in sent[0] and field not in sent[1]
        other = next(name for name in hints if name != field)
        assert sent[1][other] == hints[other]  # the hint the server takes stays
        second = client.responses.create(model=OPENAI_MODEL, input="again", stream=True, **hints)
        assert [e.type for e in second][-1] == "response.completed"
        assert len(fresh.openai_fake.requests) == 3  # remembered: no second refusal
        assert field not in fresh.openai_fake.requests[-1].body
    finally:
        fresh.server.stop()  # forget what this provider refused, for the other tests
        fresh.server.start()


def test_a_client_own_field_on_chat_completions_is_its_own(fresh: ResponsesBox) -> None:
    """/v1/chat/completions passes the client's body on: the server's refusal is relayed."""
    fresh.openai_fake.field_refusals["prompt_cache_key"] = _groq("prompt_cache_key")
    _, key = fresh.new_key()
    answer = fresh.openai(key).chat.completions.with_raw_response
    with pytest.raises(Exception) as caught:
        answer.create(model=OPENAI_MODEL, messages=[{"role": "user", "content": "hi"}],
                      prompt_cache_key="thread-1")  # fmt: skip
    assert getattr(caught.value, "status_code", None) == 400
    assert "prompt_cache_key" in str(caught.value)
    assert len(fresh.openai_fake.requests) == 1


def test_codexs_prompt_cache_key_asks_an_anthropic_upstream_to_cache(fresh: ResponsesBox) -> None:
    """OpenAI caches a prompt on its own (reads at the cache-read price); Anthropic only where
    asked. Codex's turns each send the whole conversation with its thread id as
    `prompt_cache_key`: translated to an `anthropic` provider without a breakpoint, every turn
    paid the full input price. The key now asks for Anthropic's automatic caching (a top-level
    `cache_control`); a call without one is sent as before."""
    _, key = fresh.new_key()
    client = fresh.openai(key)
    client.responses.create(model=ANTHROPIC_MODEL, input="hi", prompt_cache_key="thread-1")
    client.responses.create(model=ANTHROPIC_MODEL, input="hi", stream=True,
                            prompt_cache_key="thread-1").close()  # fmt: skip
    client.responses.create(model=ANTHROPIC_MODEL, input="hi")
    sent = [r.body for r in fresh.fake.requests]
    assert [body.get("cache_control") for body in sent] == [{"type": "ephemeral"}] * 2 + [None]
    assert not any("prompt_cache_key" in body for body in sent)


def test_an_anthropic_server_that_refuses_caching_is_asked_again_without(
    fresh: ResponsesBox,
) -> None:
    """An Anthropic-compatible server that does not know the top-level `cache_control`
    (a field the box added, not the client) is asked once more without it, and not sent it
    again for a while."""
    fresh.fake.refused_fields.add("cache_control")
    _, key = fresh.new_key()
    client = fresh.openai(key)
    try:
        first = client.responses.create(model=ANTHROPIC_MODEL, input="hi",
                                        prompt_cache_key="thread-1")  # fmt: skip
        assert first.status == "completed"
        sent = [r.body for r in fresh.fake.requests]
        assert ["cache_control" in body for body in sent] == [True, False]
        client.responses.create(model=ANTHROPIC_MODEL, input="again", prompt_cache_key="thread-1")
        assert len(fresh.fake.requests) == 3  # remembered: no second refusal
        assert "cache_control" not in fresh.fake.requests[-1].body
    finally:
        fresh.server.stop()  # forget what this provider refused, for the other tests
        fresh.server.start()
