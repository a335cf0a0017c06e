"""/v1/messages to an `openai` provider: Anthropic's structured outputs (`output_config.format`,
what the anthropic SDK's `messages.parse(output_format=...)` sends, and the older top-level
`output_format`) reach the OpenAI model as its `response_format` json_schema: strict where
OpenAI's strict mode takes the schema (every property required, no additional ones), else
as a plain schema, which OpenAI's strict mode would refuse with a 400."""

from __future__ import annotations

from typing import Any

import httpx
import pydantic
import pytest

from tests.fakes.openai_upstream import Reply
from tests.messages.conftest import NEEDS_SDK, OPENAI_ALIAS, MessagesBox
from tests.support import TLS

pytestmark = NEEDS_SDK

ASK = [{"role": "user", "content": "The weather in Paris?"}]


class Weather(pydantic.BaseModel):
    city: str
    celsius: int


class Forecast(pydantic.BaseModel):
    city: str
    note: str | None = None  # optional: not in `required`


def test_the_sdks_parse_gets_the_answer_in_its_schema(fresh: MessagesBox) -> None:
    _, key = fresh.new_key()
    fresh.openai_fake.push(Reply(content='{"city": "Paris", "celsius": 21}'))
    message = fresh.client(key).messages.parse(
        model=OPENAI_ALIAS, max_tokens=200, messages=ASK, output_format=Weather
    )
    assert message.parsed_output == Weather(city="Paris", celsius=21)
    sent = fresh.openai_fake.requests[-1].body["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["strict"] is True
    schema = sent["json_schema"]["schema"]
    assert schema["required"] == ["city", "celsius"] and schema["additionalProperties"] is False


@pytest.mark.parametrize("streamed", [False, True])
def test_a_schema_with_optional_fields_is_sent_without_strict(
    fresh: MessagesBox, streamed: bool
) -> None:
    """OpenAI's strict mode refuses a schema whose `required` leaves a property out (400
    "Invalid schema for response_format"); Anthropic's takes it."""
    _, key = fresh.new_key()
    fresh.openai_fake.push(Reply(content='{"city": "Paris"}'))
    client = fresh.client(key)
    ask: dict[str, Any] = {"model": OPENAI_ALIAS, "max_tokens": 200, "messages": ASK,
                           "output_format": Forecast}  # fmt: skip
    if streamed:
        with client.messages.stream(**ask) as stream:
            message = stream.get_final_message()
    else:
        message = client.messages.parse(**ask)
    assert message.parsed_output == Forecast(city="Paris")
    sent = fresh.openai_fake.requests[-1].body["response_format"]
    assert sent["json_schema"]["strict"] is False
    assert sent["json_schema"]["schema"]["required"] == ["city"]


def test_the_older_output_format_field_is_honoured_too(fresh: MessagesBox) -> None:
    _, key = fresh.new_key()
    fresh.openai_fake.push(Reply(content='{"city": "Paris", "celsius": 21}'))
    schema = {"type": "object", "properties": {"city": {"type": "string"}},
              "required": ["city"], "additionalProperties": False}  # fmt: skip
    body = {"model": OPENAI_ALIAS, "max_tokens": 50, "messages": ASK,
            "output_format": {"type": "json_schema", "schema": schema}}  # fmt: skip
    answer = httpx.post(f"{fresh.server.base_url}/v1/messages", json=body,
                        headers={"x-api-key": key}, timeout=30, verify=TLS)  # fmt: skip
    assert answer.status_code == 200, answer.text
    sent = fresh.openai_fake.requests[-1].body["response_format"]
    assert sent["json_schema"]["schema"] == schema and sent["json_schema"]["strict"] is True


def test_strict_tools_stay_strict_where_openai_can_hold_them_so(fresh: MessagesBox) -> None:
    """Anthropic's strict tool use (`strict: true`): the OpenAI function is strict too where
    OpenAI's strict mode takes its schema; one with an optional parameter goes without."""
    _, key = fresh.new_key()
    exact = {"type": "object", "properties": {"path": {"type": "string"}},
             "required": ["path"], "additionalProperties": False}  # fmt: skip
    loose = {**exact, "properties": {"path": {"type": "string"}, "limit": {"type": "integer"}}}
    tools = [{"name": "Read", "input_schema": exact, "strict": True},
             {"name": "Grep", "input_schema": loose, "strict": True},
             {"name": "Ls", "input_schema": exact}]  # fmt: skip
    fresh.openai_fake.push(Reply(content="ok"))
    fresh.client(key).messages.create(model=OPENAI_ALIAS, max_tokens=50, messages=ASK, tools=tools)
    sent = [tool["function"] for tool in fresh.openai_fake.requests[-1].body["tools"]]
    assert [function.get("strict") for function in sent] == [True, False, None]
