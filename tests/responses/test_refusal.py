"""A chat model's refusal reaches a Responses client as OpenAI's `refusal` content part (and
`response.refusal.delta` / `.done` events), not as answer text: the SDK's structured-output
parsing (`responses.parse`, `text_format=`) skips a refusal and would fail parsing it as JSON."""

from __future__ import annotations

import json

from pydantic import BaseModel

from tests.fakes.openai_upstream import Reply
from tests.messages.conftest import openai_chunk
from tests.responses.conftest import OPENAI_MODEL, ResponsesBox

REFUSAL = "I'm sorry, I can't help with that."
USAGE = {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21}


class Weather(BaseModel):
    city: str
    celsius: int


def refused_completion() -> list[bytes]:
    message = {"role": "assistant", "content": None, "refusal": REFUSAL}
    body = {"id": "chatcmpl-r", "object": "chat.completion", "created": 1, "model": "gpt-5.4-mini",
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": USAGE}  # fmt: skip
    return [json.dumps(body).encode()]


def refused_stream() -> list[bytes]:
    deltas = [{"role": "assistant", "content": None, "refusal": ""},
              {"refusal": "I'm sorry, "}, {"refusal": "I can't help with that."}]  # fmt: skip
    frames = [openai_chunk(delta) for delta in deltas]
    frames.append(openai_chunk({}, finish="stop"))
    return [*frames, openai_chunk({}, usage=USAGE), b"data: [DONE]\n\n"]


def test_a_refusal_is_a_refusal_part(fresh: ResponsesBox) -> None:
    _, key = fresh.new_key()
    fresh.openai_fake.push(Reply(raw=refused_completion(), content_type="application/json"))
    client = fresh.openai(key)
    parsed = client.responses.parse(model=OPENAI_MODEL, input="Weather?", text_format=Weather)
    (message,) = parsed.output
    assert message.type == "message"
    assert [part.to_dict() for part in message.content] == [{"type": "refusal", "refusal": REFUSAL}]
    assert parsed.output_parsed is None and parsed.output_text == ""


def test_a_streamed_refusal_is_a_refusal_part(fresh: ResponsesBox) -> None:
    _, key = fresh.new_key()
    fresh.openai_fake.push(Reply(raw=refused_stream()))
    client = fresh.openai(key)
    with client.responses.stream(model=OPENAI_MODEL, input="W?", text_format=Weather) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    assert kinds[2:-1] == [
        "response.output_item.added", "response.content_part.added",
        "response.refusal.delta", "response.refusal.delta", "response.refusal.done",
        "response.content_part.done", "response.output_item.done",
    ]  # fmt: skip
    assert events[3].part.type == "refusal"  # type: ignore[union-attr]
    assert events[6].refusal == REFUSAL  # type: ignore[union-attr]
    (message,) = final.output
    assert [part.to_dict() for part in message.content] == [{"type": "refusal", "refusal": REFUSAL}]
    assert final.output_parsed is None
