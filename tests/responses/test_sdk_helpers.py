"""The SDKs' higher-level helpers against the box, for a model of each provider kind (an
`openai` one and an `anthropic` one, so translation runs both ways): the openai SDK's
chat.completions.stream/parse with a pydantic response_format and pydantic_function_tool,
responses.parse and responses.stream; its retries on a 429 with Retry-After (they wait as told
and the answer is charged once); and every answer and event checked strictly against the SDKs'
own pydantic types (the SDKs build them without validation, so a missing field would only show
as a None where a value belongs)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pydantic
import pytest

from tests.fakes.anthropic_upstream import Reply as AnthropicReply
from tests.fakes.anthropic_upstream import ToolUse
from tests.fakes.openai_upstream import Reply
from tests.responses.conftest import ANTHROPIC_MODEL, OPENAI_MODEL, ResponsesBox
from tests.support import TLS

ASK = [{"role": "user", "content": "weather in Paris?"}]
ANSWER = '{"city": "Paris", "temp": 21}'


class Weather(pydantic.BaseModel):
    city: str
    temp: int


class GetWeather(pydantic.BaseModel):
    city: str


def script(box: ResponsesBox, *, text: str = "", call: bool = False, times: int = 1) -> None:
    """The same answer from both fakes, `times` over: `text`, or one GetWeather call."""
    uses = [ToolUse("toolu_1", "GetWeather", {"city": "Paris"})] if call else []
    calls = [{"name": "GetWeather", "arguments": '{"city": "Paris"}'}] if call else None
    box.fake.script(*[AnthropicReply(text=text, tool_uses=uses)] * times)
    box.openai_fake.push(*[Reply(content=text, tool_calls=calls)] * times)


@pytest.mark.parametrize("model", [OPENAI_MODEL, ANTHROPIC_MODEL])
def test_the_chat_helpers_parse_formats_and_tools(fresh: ResponsesBox, model: str) -> None:
    _, key = fresh.new_key()
    client = fresh.openai(key)
    script(fresh, text=ANSWER, times=2)
    parsed = client.chat.completions.parse(model=model, messages=ASK, response_format=Weather)
    assert parsed.choices[0].message.parsed == Weather(city="Paris", temp=21)
    with client.chat.completions.stream(
        model=model, messages=ASK, response_format=Weather, stream_options={"include_usage": True}
    ) as stream:
        kinds = {event.type for event in stream}
        final = stream.get_final_completion()
    assert {"content.delta", "content.done"} <= kinds
    assert final.choices[0].message.parsed == Weather(city="Paris", temp=21)
    assert final.usage is not None and final.usage.cost_usd > 0  # type: ignore[attr-defined]
    script(fresh, call=True, times=2)
    tools = [openai.pydantic_function_tool(GetWeather)]
    answer = client.chat.completions.parse(model=model, messages=ASK, tools=tools)
    [call] = answer.choices[0].message.tool_calls or []
    assert call.function.parsed_arguments == GetWeather(city="Paris")
    with client.chat.completions.stream(model=model, messages=ASK, tools=tools) as stream:
        done = [e for e in stream if e.type == "tool_calls.function.arguments.done"]
    assert [e.parsed_arguments for e in done] == [GetWeather(city="Paris")]
    assert stream.get_final_completion().choices[0].finish_reason == "tool_calls"


@pytest.mark.parametrize("model", [OPENAI_MODEL, ANTHROPIC_MODEL])
def test_the_responses_helpers_parse_text_and_calls(fresh: ResponsesBox, model: str) -> None:
    _, key = fresh.new_key()
    client = fresh.openai(key)
    script(fresh, text=ANSWER)
    parsed = client.responses.parse(model=model, input="weather?", text_format=Weather)
    assert parsed.output_parsed == Weather(city="Paris", temp=21)
    script(fresh, call=True)
    schema = GetWeather.model_json_schema() | {"additionalProperties": False}
    tool = {"type": "function", "name": "GetWeather", "strict": True, "parameters": schema}
    with client.responses.stream(model=model, input="weather?", tools=[tool]) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[-1] == "response.completed" and "response.function_call_arguments.done" in kinds
    [call] = [item for item in final.output if item.type == "function_call"]
    assert json.loads(call.arguments) == {"city": "Paris"}
    assert final.usage is not None and final.usage.cost_usd > 0  # type: ignore[attr-defined]


# What the openai Node SDK's zodTextFormat/zodResponseFormat send for a schema that uses one
# object twice (its zod-to-json-schema extracts it to the root, in draft-07's `definitions`),
# as Pydantic v1 and other draft-07 generators do too.
ADDRESS = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
           "additionalProperties": False}  # fmt: skip
TWO_ADDRESSES = {
    "type": "object",
    "properties": {"home": {"$ref": "#/definitions/Address"},
                   "work": {"$ref": "#/definitions/Address"}},
    "required": ["home", "work"], "additionalProperties": False,
    "definitions": {"Address": ADDRESS}, "$schema": "http://json-schema.org/draft-07/schema#",
}  # fmt: skip


def test_draft_07_definitions_reach_claude_with_their_refs(fresh: ResponsesBox) -> None:
    """A text.format schema and a strict tool's parameters with `definitions` (Anthropic takes
    them as it takes `$defs`) go to an anthropic model with their definitions, fitted to its
    subset: they were moved into a description as text, every `$ref` to them left dangling, and
    Anthropic refused the call."""
    _, key = fresh.new_key()
    answer = '{"home": {"city": "Paris"}, "work": {"city": "Lyon"}}'
    fresh.fake.script(AnthropicReply(text=answer))
    tool = {"type": "function", "name": "Move", "strict": True, "parameters": TWO_ADDRESSES}
    form = {"type": "json_schema", "name": "addresses", "strict": True, "schema": TWO_ADDRESSES}
    reply = fresh.openai(key).responses.create(
        model=ANTHROPIC_MODEL, input="where?", tools=[tool], text={"format": form}
    )
    assert json.loads(reply.output_text) == json.loads(answer)
    sent = fresh.fake.requests[-1].body
    for schema in (sent["output_config"]["format"]["schema"], sent["tools"][0]["input_schema"]):
        assert schema["definitions"] == {"Address": ADDRESS}
        assert schema["properties"]["work"] == {"$ref": "#/definitions/Address"}


@pytest.mark.parametrize("model", [OPENAI_MODEL, ANTHROPIC_MODEL])
def test_responses_parse_takes_its_own_verbosity_keyword(fresh: ResponsesBox, model: str) -> None:
    """The openai SDK's typed responses.parse(verbosity=...) sends `verbosity` at the top of
    the body (3.57 to 3.63 alike), not in `text`: the box takes it as it takes text.verbosity
    (a style hint, ignored), instead of a 400 for a keyword the SDK's own helper offers."""
    _, key = fresh.new_key()
    script(fresh, text=ANSWER)
    parsed = fresh.openai(key).responses.parse(
        model=model, input="weather?", text_format=Weather, verbosity="low"
    )
    assert parsed.output_parsed == Weather(city="Paris", temp=21)
    if model == OPENAI_MODEL:
        assert "verbosity" not in fresh.openai_fake.requests[-1].body


def test_the_sdk_waits_the_retry_after_of_a_429_and_is_charged_once(fresh: ResponsesBox) -> None:
    email, key = fresh.new_key()
    limited = {"message": "Rate limit reached for requests", "type": "requests",
               "code": "rate_limit_exceeded"}  # fmt: skip
    fresh.openai_fake.push(Reply(status=429, error=limited, headers={"retry-after": "1"}))
    fresh.openai_fake.push(Reply(content="at last"))
    client = fresh.openai(key).with_options(max_retries=2)
    started = time.monotonic()
    answer = client.chat.completions.with_raw_response.create(model=OPENAI_MODEL, messages=ASK)
    assert time.monotonic() - started >= 1  # the box's one try (its one key), the SDK's wait
    assert answer.retries_taken == 1 and answer.parse().choices[0].message.content == "at last"
    rows = fresh.usage_rows(email)
    charged = [row["cost_nanos"] for row in rows if row["status"] == "ok"]
    assert len(charged) == 1 and all(r["cost_nanos"] == 0 for r in rows if r["status"] != "ok")
    assert float(answer.headers["x-codelace-cost-usd"]) * 1e9 == pytest.approx(charged[0])
    assert fresh.balance_nanos(email)[1] == 0  # no hold left behind


RESPONSE_EVENT = pydantic.TypeAdapter(openai.types.responses.ResponseStreamEvent)


def _events(answer: httpx.Response) -> Iterator[dict[str, Any]]:
    for line in answer.iter_lines():
        if line.startswith("data: ") and line != "data: [DONE]":
            yield json.loads(line.removeprefix("data: "))


@pytest.mark.parametrize("model", [OPENAI_MODEL, ANTHROPIC_MODEL])
def test_every_answer_and_event_holds_to_the_sdks_own_types(
    fresh: ResponsesBox, model: str
) -> None:
    import anthropic.types
    from openai.types.chat import ChatCompletion, ChatCompletionChunk

    message_event = pydantic.TypeAdapter(anthropic.types.RawMessageStreamEvent)
    _, key = fresh.new_key()
    script(fresh, text="Let me look.", call=True, times=6)
    bearer, anthropic_head = {"authorization": f"Bearer {key}"}, {"anthropic-version": "2023-06-01"}
    chat = {"model": model, "messages": ASK, "tools": [openai.pydantic_function_tool(GetWeather)]}
    tool = {"name": "GetWeather", "input_schema": GetWeather.model_json_schema()}
    message = {"model": model, "max_tokens": 200, "messages": ASK, "tools": [tool]}
    with httpx.Client(
        base_url=fresh.server.base_url, headers=bearer, timeout=30, verify=TLS
    ) as http:
        ChatCompletion.model_validate(http.post("/v1/chat/completions", json=chat).json())
        chunks = chat | {"stream": True, "stream_options": {"include_usage": True}}
        with http.stream("POST", "/v1/chat/completions", json=chunks) as answer:
            for chunk in _events(answer):
                ChatCompletionChunk.model_validate(chunk)
        asked = {"model": model, "input": "weather?"}
        openai.types.responses.Response.model_validate(
            http.post("/v1/responses", json=asked).json()
        )
        with http.stream("POST", "/v1/responses", json=asked | {"stream": True}) as answer:
            for event in _events(answer):
                RESPONSE_EVENT.validate_python(event)
        answered = http.post("/v1/messages", json=message, headers=anthropic_head).json()
        anthropic.types.Message.model_validate(answered)
        streamed = message | {"stream": True}
        with http.stream("POST", "/v1/messages", json=streamed, headers=anthropic_head) as answer:
            for event in _events(answer):
                if event["type"] != "ping":  # the SDK reads pings apart
                    message_event.validate_python(event)
