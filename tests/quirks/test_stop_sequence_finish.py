"""TGI (and servers built on it) end an answer that hit a stop string with finish_reason
"stop_sequence", not OpenAI's "stop". On /v1/messages the anthropic SDK's client reads
stop_reason "stop_sequence" (and the string in stop_sequence, when the request's stop sequences
tell which one matched: the only one asked for, or the one the text ends with; else null); on
/v1/responses the answer is complete."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes.openai_upstream import Reply
from tests.quirks.conftest import MODEL
from tests.responses.conftest import ResponsesBox

pytestmark = pytest.mark.timeout(60)


def _message(box: ResponsesBox, key: str, stream: bool, stops: list[str]) -> Any:
    request: dict[str, Any] = {"model": MODEL, "max_tokens": 100, "stop_sequences": stops,
                               "messages": [{"role": "user", "content": "Count"}]}  # fmt: skip
    client = box.client(key)
    if not stream:
        return client.messages.create(**request)
    with client.messages.stream(**request) as events:
        for _ in events:
            pass
        return events.get_final_message()


@pytest.mark.parametrize("stream", [False, True], ids=["answer", "stream"])
@pytest.mark.parametrize(
    ("content", "stops", "matched"),
    [("One two", ["END"], "END"),
     ("One two END", ["STOP", "END"], "END"),
     ("One two", ["STOP", "END"], None)],
    ids=["only-one-asked", "text-ends-with-it", "cannot-tell"],
)  # fmt: skip
def test_a_stop_sequence_finish_is_stop_sequence_on_messages(
    box: ResponsesBox, stream: bool, content: str, stops: list[str], matched: str | None
) -> None:
    _email, key = box.new_key()
    box.openai_fake.push(Reply(content=content, finish_reason="stop_sequence"))
    message = _message(box, key, stream, stops)
    assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", matched)
    assert box.openai_fake.requests[-1].body["stop"] == stops


@pytest.mark.parametrize("stream", [False, True], ids=["answer", "stream"])
def test_a_stop_sequence_finish_is_a_completed_response(box: ResponsesBox, stream: bool) -> None:
    _email, key = box.new_key()
    box.openai_fake.push(Reply(content="One two", finish_reason="stop_sequence"))
    client = box.openai(key)
    if stream:
        events = list(client.responses.create(model=MODEL, input="Count", stream=True))
        response = events[-1].response
        assert events[-1].type == "response.completed"
    else:
        response = client.responses.create(model=MODEL, input="Count")
    assert (response.status, response.incomplete_details) == ("completed", None)
    assert response.output_text == "One two"


@pytest.mark.parametrize("stream", [False, True], ids=["answer", "stream"])
@pytest.mark.parametrize("finish", ["stop_sequence", "eos_token", "end_turn", "model_length",
                                    "length"])  # fmt: skip
def test_a_finish_reason_of_another_dialect_is_openai_s_own_on_chat_completions(
    box: ResponsesBox, stream: bool, finish: str
) -> None:
    """TGI's "stop_sequence" (its "eos_token", an Anthropic-minded server's "end_turn") was
    relayed as it came on /v1/chat/completions, where OpenAI's clients know only stop, length,
    tool_calls, content_filter and function_call: it is "stop" there, as OpenAI says of a stop
    string or a natural end; Mistral's "model_length" (the context window filled) is "length",
    as OpenAI says of an answer cut by either limit; OpenAI's own words go through as they are."""
    _email, key = box.new_key()
    box.openai_fake.push(Reply(content="One two", finish_reason=finish))
    client = box.openai(key)
    request: dict[str, Any] = {"model": MODEL, "stop": ["END"],
                               "messages": [{"role": "user", "content": "Count"}]}  # fmt: skip
    if stream:
        chunks = list(client.chat.completions.create(**request, stream=True))
        said = [c.finish_reason for chunk in chunks for c in chunk.choices if c.finish_reason]
    else:
        said = [c.finish_reason for c in client.chat.completions.create(**request).choices]
    assert said == ["length" if "length" in finish else "stop"], said
