"""A tool call whose arguments are no JSON object, from an `openai` provider, streamed to the
anthropic SDK: the SDK parses the `input_json_delta` pieces as they come (partial JSON) and a
piece that can begin no object ended the whole stream with "Unable to parse tool parameter JSON"
(the text, the call and the usage lost), where the same answer unstreamed gave the call with
`input: {}`. Small models behind vLLM or Ollama send such arguments now and then."""

from __future__ import annotations

import pytest

from tests.fakes.openai_upstream import Reply
from tests.messages.conftest import NEEDS_SDK, OPENAI_MODEL, MessagesBox

pytestmark = NEEDS_SDK
ASK = [{"role": "user", "content": "weather in Paris?"}]
TOOLS = [{"name": "get_weather", "input_schema": {"type": "object",
          "properties": {"city": {"type": "string"}}}}]  # fmt: skip


@pytest.mark.parametrize(
    "arguments",
    ["city=Paris", '["Paris"]', '{city: "Paris"}', '{"city": "Paris"}{"city": "Rome"}',
     '{"city": "Pa\x01ris"}', '{"city": "Paris",, "x": 1}', "null"],
)  # fmt: skip
def test_arguments_that_are_no_object_end_as_an_empty_input_not_a_broken_stream(
    fresh: MessagesBox, arguments: str
) -> None:
    _, key = fresh.new_key()
    client = fresh.client(key)
    call = {"name": "get_weather", "arguments": arguments}
    fresh.openai_fake.push(
        Reply(content="", tool_calls=[call]), Reply(content="", tool_calls=[call])
    )
    whole = client.messages.create(model=OPENAI_MODEL, max_tokens=100, messages=ASK, tools=TOOLS)
    with client.messages.stream(
        model=OPENAI_MODEL, max_tokens=100, messages=ASK, tools=TOOLS
    ) as stream:
        streamed = stream.get_final_message()
    assert [b.type for b in streamed.content] == ["tool_use"] and streamed.stop_reason == "tool_use"
    assert isinstance(streamed.content[0].input, dict)
    assert whole.content[0].input == {}
    assert streamed.usage.output_tokens > 0


def test_good_arguments_still_stream_piece_by_piece(fresh: MessagesBox) -> None:
    _, key = fresh.new_key()
    arguments = (
        '{"city": "Paris, \\"la ville\\" \\u00e9t\\u00e9", "days": [1, 2.5e1, -0.5], "ok": true}'
    )
    fresh.openai_fake.push(Reply(content="", tool_calls=[{"name": "get_weather",
                                                          "arguments": arguments}]))  # fmt: skip
    with fresh.client(key).messages.stream(
        model=OPENAI_MODEL, max_tokens=100, messages=ASK, tools=TOOLS
    ) as stream:
        pieces = [event.partial_json for event in stream if event.type == "input_json"]
        streamed = stream.get_final_message()
    assert len(pieces) > 5 and "".join(pieces) == arguments
    assert streamed.content[0].input == {"city": 'Paris, "la ville" été', "days": [1, 25.0, -0.5],
                                         "ok": True}  # fmt: skip
