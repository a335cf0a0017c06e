"""POST /v1/responses through a real box with the real openai SDK: translated to Chat
Completions (and on to Anthropic's Messages API), metered like chat completions, streams in
OpenAI's event order, a function tool round trip, errors in the OpenAI envelope."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from tests.fakes.anthropic_upstream import Reply as AnthropicReply
from tests.fakes.openai_upstream import Reply
from tests.messages.conftest import openai_chunk, usd_nanos
from tests.responses.conftest import ANTHROPIC_MODEL, OPENAI_MODEL, PRICES, ResponsesBox
from tests.support import TLS

ROUTE = "/v1/responses"
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]},
}  # fmt: skip


def cost(prompt: int, completion: int) -> int:
    return usd_nanos((prompt, PRICES["in"]), (completion, PRICES["out"]))


def test_create_is_translated_and_metered(fresh: ResponsesBox) -> None:
    email, key = fresh.new_key()
    fresh.openai_fake.push(Reply(content="Four.", prompt_tokens=1234, completion_tokens=56))
    before, _ = fresh.balance_nanos(email)
    raw = fresh.openai(key).responses.with_raw_response.create(
        model=OPENAI_MODEL, instructions="Be brief.", input="2+2?", max_output_tokens=300,
        temperature=0.5, store=False, include=["reasoning.encrypted_content"],
        prompt_cache_key="thread-1", text={"verbosity": "low"},
    )  # fmt: skip
    response = raw.parse()
    sent = fresh.openai_fake.requests[-1]
    assert sent.body["model"] == "gpt-5.4-mini"
    assert sent.body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "2+2?"},
    ]
    assert sent.body["temperature"] == 0.5
    assert 300 in (sent.body.get("max_completion_tokens"), sent.body.get("max_tokens"))
    for ignored in ("include", "text", "store", "verbosity"):
        assert ignored not in sent.body
    assert sent.body["prompt_cache_key"] == "thread-1"  # Chat Completions takes it
    assert response.output_text == "Four." and response.status == "completed"
    assert response.model == OPENAI_MODEL and response.id.startswith("resp_")
    assert (response.usage.input_tokens, response.usage.output_tokens) == (1234, 56)
    expected = cost(1234, 56)
    after, held = fresh.balance_nanos(email)
    assert (before - after, held) == (expected, 0)
    charged = raw.headers["x-codelace-cost-usd"]
    assert round(float(charged) * 1e9) == expected
    assert response.usage.model_extra["cost_usd"] == pytest.approx(expected / 1e9)
    row = fresh.usage_rows(email)[-1]
    assert (row["route"], row["input_tokens"], row["output_tokens"], row["cost_nanos"]) == (
        ROUTE, 1234, 56, expected)  # fmt: skip


def test_stream_events_come_in_openai_order(fresh: ResponsesBox) -> None:
    email, key = fresh.new_key()
    fresh.openai_fake.push(Reply(content="Hello there friend", prompt_tokens=40))
    before, _ = fresh.balance_nanos(email)
    with fresh.openai(key).responses.stream(model=OPENAI_MODEL, input="Hi") as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [event.type for event in events]
    assert kinds == [
        "response.created", "response.in_progress", "response.output_item.added",
        "response.content_part.added", "response.output_text.delta",
        "response.output_text.delta", "response.output_text.delta",
        "response.output_text.done", "response.content_part.done",
        "response.output_item.done", "response.completed",
    ]  # fmt: skip
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert fresh.openai_fake.requests[-1].body["stream"] is True
    assert final.output_text == "Hello there friend" and final.model == OPENAI_MODEL
    assert (final.usage.input_tokens, final.usage.output_tokens) == (40, 3)
    expected = cost(40, 3)
    assert final.usage.model_extra["cost_usd"] == pytest.approx(expected / 1e9)
    after, held = fresh.balance_nanos(email)
    assert (before - after, held) == (expected, 0)
    row = fresh.usage_rows(email)[-1]
    assert (row["route"], row["stream"]) == (ROUTE, 1)


USAGE = {"prompt_tokens": 30, "completion_tokens": 4, "total_tokens": 34}
# a first chunk with the answer in it, as vLLM, Ollama and DeepSeek send it (OpenAI's own
# first chunk holds only the role); a stream with no output at all
FIRST_CHUNK_TEXT = [openai_chunk({"role": "assistant", "content": "Hi"}), openai_chunk({}, "stop")]
NO_OUTPUT = [openai_chunk({}, "stop")]
FAILING = [openai_chunk({"role": "assistant", "content": "Hi"}),
           b'data: {"error": {"message": "overloaded", "type": "server_error"}}\n\n']  # fmt: skip


@pytest.mark.parametrize(
    "chunks", [FIRST_CHUNK_TEXT, NO_OUTPUT, FAILING], ids=["first-chunk", "empty", "failing"]
)
def test_sequence_numbers_count_up_from_created(fresh: ResponsesBox, chunks: list[bytes]) -> None:
    _, key = fresh.new_key()
    raw = [*chunks, openai_chunk({}, usage=USAGE), b"data: [DONE]\n\n"]
    fresh.openai_fake.push(Reply(raw=raw))
    with fresh.openai(key).responses.stream(model=OPENAI_MODEL, input="Hi") as stream:
        events = list(stream)
    ending = "response.failed" if chunks is FAILING else "response.completed"
    assert events[0].type == "response.created" and events[-1].type == ending
    assert [e.sequence_number for e in events] == list(range(len(events)))


def test_a_function_tool_round_trip(fresh: ResponsesBox) -> None:
    _, key = fresh.new_key()
    client = fresh.openai(key)
    call_args = json.dumps({"city": "Oslo"})
    fresh.openai_fake.push(
        Reply(tool_calls=[{"name": "get_weather", "arguments": call_args}]),
        Reply(content="It is 3 degrees in Oslo."),
    )
    with client.responses.stream(
        model=OPENAI_MODEL, input="Weather in Oslo?", tools=[WEATHER], tool_choice="auto"
    ) as stream:
        kinds = [event.type for event in stream]
        first = stream.get_final_response()
    assert "response.function_call_arguments.delta" in kinds
    assert kinds[-3:] == [
        "response.function_call_arguments.done", "response.output_item.done",
        "response.completed"]  # fmt: skip
    sent = fresh.openai_fake.requests[-1].body
    assert sent["tools"] == [{"type": "function", "function": {
        k: v for k, v in WEATHER.items() if k != "type"}}]  # fmt: skip
    (call,) = first.output
    assert (call.type, call.name, call.arguments) == ("function_call", "get_weather", call_args)
    answer = client.responses.create(
        model=OPENAI_MODEL,
        tools=[WEATHER],
        input=[
            {"role": "user", "content": "Weather in Oslo?"},
            {"type": "function_call", "call_id": call.call_id, "name": call.name,
             "arguments": call.arguments},
            {"type": "function_call_output", "call_id": call.call_id, "output": "3 C"},
        ],
    )  # fmt: skip
    messages = fresh.openai_fake.requests[-1].body["messages"]
    assert messages[1]["role"] == "assistant"
    assert messages[1]["tool_calls"][0]["id"] == call.call_id
    assert messages[1]["tool_calls"][0]["function"]["arguments"] == call_args
    assert messages[2] == {"role": "tool", "tool_call_id": call.call_id, "content": "3 C"}
    assert answer.output_text == "It is 3 degrees in Oslo."


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"previous_response_id": "resp_1"}, "previous_response_id"),
        ({"background": True}, "background"),
        ({"tools": [{"type": "file_search", "vector_store_ids": ["v"]}]}, "tools[0].type"),
        ({"truncation": "auto"}, "truncation"),
    ],
)
def test_unsupported_fields_are_400s_naming_them(
    fresh: ResponsesBox, extra: dict[str, object], param: str
) -> None:
    email, key = fresh.new_key()
    before = fresh.balance_nanos(email)
    with pytest.raises(openai.BadRequestError) as caught:
        fresh.openai(key).responses.create(model=OPENAI_MODEL, input="Hi", **extra)  # type: ignore[call-overload]
    assert caught.value.status_code == 400
    assert isinstance(caught.value.body, dict) and caught.value.body["param"] == param
    assert param.split("[", maxsplit=1)[0].split(".", maxsplit=1)[0] in caught.value.message
    assert fresh.openai_fake.requests == [] and fresh.balance_nanos(email) == before


def test_web_search_is_dropped_and_errors_use_the_openai_envelope(fresh: ResponsesBox) -> None:
    email, key = fresh.new_key()
    client = fresh.openai(key)
    fresh.openai_fake.push(Reply(content="No search needed."))
    answer = client.responses.create(
        model=OPENAI_MODEL, input="Hi", tools=[{"type": "web_search"}, WEATHER]
    )
    assert answer.output_text == "No search needed."
    tools = fresh.openai_fake.requests[-1].body["tools"]
    assert [t["function"]["name"] for t in tools] == ["get_weather"]
    with pytest.raises(openai.NotFoundError) as missing:
        client.responses.create(model="oai/no-such-model", input="Hi")
    assert missing.value.body["code"] == "model_not_found"  # type: ignore[index]
    with pytest.raises(openai.AuthenticationError):
        fresh.openai("sk-wrong").responses.create(model=OPENAI_MODEL, input="Hi")
    upstream_error = {"message": "bad image", "type": "invalid_request_error", "code": None}
    fresh.openai_fake.push(Reply(status=400, error=upstream_error))
    before = fresh.balance_nanos(email)
    with pytest.raises(openai.APIStatusError) as failed:
        client.responses.create(model=OPENAI_MODEL, input="Hi")
    assert set(failed.value.body) >= {"message", "type", "code"}  # type: ignore[arg-type]
    assert "bad image" in failed.value.message
    assert fresh.balance_nanos(email) == before


def test_an_anthropic_provider_through_the_chat_translation(fresh: ResponsesBox) -> None:
    email, key = fresh.new_key()
    fresh.fake.script(AnthropicReply(text="Bonjour!", input_tokens=30, output_tokens=7))
    fresh.fake.script(AnthropicReply(text="Salut!", input_tokens=31, output_tokens=5))
    before, _ = fresh.balance_nanos(email)
    client = fresh.openai(key)
    answer = client.responses.create(model=ANTHROPIC_MODEL, instructions="French.", input="Hi",
                                     max_output_tokens=100)  # fmt: skip
    sent = fresh.fake.requests[-1].body
    assert sent["system"] in ("French.", [{"type": "text", "text": "French."}])
    assert sent["max_tokens"] == 100
    assert answer.output_text == "Bonjour!"
    with client.responses.stream(model=ANTHROPIC_MODEL, input="Hi") as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert final.output_text == "Salut!"
    after, held = fresh.balance_nanos(email)
    assert (before - after, held) == (cost(30, 7) + cost(31, 5), 0)
    assert [r["route"] for r in fresh.usage_rows(email)] == [ROUTE, ROUTE]


def test_a_stream_failing_midway_ends_with_response_failed_and_costs_nothing(
    fresh: ResponsesBox,
) -> None:
    email, key = fresh.new_key()
    fresh.openai_fake.push(Reply(content="one two three four five six", error_after=3))
    before = fresh.balance_nanos(email)
    with fresh.openai(key).responses.stream(model=OPENAI_MODEL, input="Count") as stream:
        events = list(stream)
    kinds = [event.type for event in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.failed"
    assert "response.output_text.delta" in kinds
    failed = events[-1].response  # type: ignore[union-attr]
    assert failed.status == "failed" and failed.error is not None
    assert "mid-stream" in failed.error.message
    assert fresh.balance_nanos(email) == before
    assert fresh.usage_rows(email)[-1]["status"] == "error"


def test_a_stream_past_max_output_tokens_ends_incomplete(fresh: ResponsesBox) -> None:
    email, key = fresh.new_key()
    fresh.openai_fake.push(Reply(content="start", endless=" more", prompt_tokens=20))
    before, _ = fresh.balance_nanos(email)
    with fresh.openai(key).responses.stream(
        model=OPENAI_MODEL, input="Go on forever", max_output_tokens=16
    ) as stream:
        events = list(stream)
    kinds = [event.type for event in events]
    assert kinds[-1] == "response.incomplete"
    final = events[-1].response  # type: ignore[union-attr]
    assert final.status == "incomplete"
    assert final.incomplete_details is not None
    assert final.incomplete_details.reason == "max_output_tokens"
    assert final.usage is not None and final.usage.model_extra["cost_usd"] > 0
    row = fresh.usage_rows(email)[-1]
    assert (row["route"], row["error_code"]) == (ROUTE, "output_cap")
    assert 0 < row["cost_nanos"] <= row["hold_nanos"]
    after, held = fresh.balance_nanos(email)
    assert held == 0 and before - after == row["cost_nanos"]


def test_stored_response_calls_are_404s_saying_the_box_keeps_none(fresh: ResponsesBox) -> None:
    """GET/DELETE /v1/responses/{id}, its cancel and input_items were a bare "no route" 404: the
    SDK's own calls get OpenAI's envelope saying the box keeps no responses (they are not
    stored: `store` is taken as false), and a call without a key its 401 first."""
    _, key = fresh.new_key()
    client = fresh.openai(key)
    calls = [
        lambda: client.responses.retrieve("resp_abc"),
        lambda: client.responses.delete("resp_abc"),
        lambda: client.responses.cancel("resp_abc"),
        lambda: client.responses.input_items.list("resp_abc"),
    ]
    for call in calls:
        with pytest.raises(openai.NotFoundError) as caught:
            call()
        error = caught.value.body
        assert isinstance(error, dict) and error["code"] == "response_not_found", error
        assert "keeps no responses" in error["message"], error
    anonymous = fresh.openai("cl_not-a-key")
    with pytest.raises(openai.AuthenticationError):
        anonymous.responses.retrieve("resp_abc")
    with pytest.raises(openai.AuthenticationError):
        anonymous.responses.cancel("resp_abc")
    raw = httpx.post(  # a raw body: 401 before anything else, as other /v1 routes
        f"{fresh.server.base_url}/v1/responses/resp_abc/cancel",
        content=b"{}",
        headers={"authorization": "Bearer cl_not-a-key", "content-type": "application/json"},
        timeout=30,
        verify=TLS,
    )
    assert raw.status_code == 401, raw.text
    compact = httpx.get(f"{fresh.server.base_url}/v1/responses/compact", timeout=30, verify=TLS)
    assert compact.status_code == 405, compact.text  # no response id: still compact's route
