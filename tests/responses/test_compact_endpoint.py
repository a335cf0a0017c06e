"""`POST /v1/responses/compact`, OpenAI's compaction endpoint (the openai SDK's
`responses.compact`): it was no route (404). Now it is the Responses request of a compaction (its
input with a `compaction_trigger` appended, unstreamed) through the same checks, hold and
settlement, answered as OpenAI documents it: `object: "response.compaction"`, the input's user
messages followed by one compaction item, usage with `cost_usd`, one usage row whose route is
`/v1/responses/compact`. A native upstream compacts on its own `/responses`; a translated model
writes the summary (test_compaction.py)."""

from __future__ import annotations

import json

import openai
import pytest

from tests.fakes.openai_upstream import Reply
from tests.messages.conftest import usd_nanos
from tests.responses.conftest import NATIVE_MODEL, OPENAI_MODEL, PRICES, ResponsesBox
from tests.responses.test_compaction import HISTORY

pytestmark = pytest.mark.filterwarnings("ignore:Pydantic serializer warnings")  # user messages
ROUTE = "/v1/responses/compact"


def test_a_chat_model_compacts_through_the_sdk(fresh: ResponsesBox) -> None:
    email, key = fresh.new_key()
    fresh.openai_fake.push(Reply(content="Asked to fix it; ls showed main.py.", prompt_tokens=800,
                                 completion_tokens=10))  # fmt: skip
    later = {"type": "message", "role": "user", "content": "And test it."}
    compacted = fresh.openai(key).responses.compact(
        model=OPENAI_MODEL,
        input=[*HISTORY, later],
        instructions="You are Codex.",  # type: ignore[list-item]
    )
    assert compacted.object == "response.compaction"
    output = [item.model_dump(exclude_unset=True) for item in compacted.output]
    assert [(i["type"], i.get("role")) for i in output] == [
        ("message", "user"), ("message", "user"), ("compaction", None)]  # fmt: skip
    assert json.dumps(output[1]["content"]).count("And test it.") == 1
    sent = fresh.openai_fake.requests[0].body
    assert not sent.get("stream") and sent["messages"][0]["content"] == "You are Codex."
    assert "handoff summary" in json.dumps(sent["messages"][-1])
    assert compacted.usage is not None and compacted.usage.input_tokens == 800
    rows = fresh.usage_rows(email)
    assert len(rows) == 1 and rows[0]["route"] == ROUTE and rows[0]["status"] == "ok"
    assert rows[0]["cost_nanos"] == usd_nanos((800, PRICES["in"]), (10, PRICES["out"]))
    _, held = fresh.balance_nanos(email)
    assert held == 0
    handed = output[-1]
    fresh.openai_fake.push(Reply(content="Testing."))
    fresh.openai(key).responses.create(model=OPENAI_MODEL, input=[*output[:2], handed])  # type: ignore[list-item]
    assert "Asked to fix it" in json.dumps(fresh.openai_fake.requests[1].body["messages"])


def test_a_native_upstream_compacts_on_its_own_responses(fresh: ResponsesBox) -> None:
    email, key = fresh.new_key()
    fresh.openai_fake.push(Reply(content="unused", prompt_tokens=300, completion_tokens=2))
    compacted = fresh.openai(key).responses.compact(model=NATIVE_MODEL, input="Hello there.")
    sent = fresh.openai_fake.requests[0]
    assert sent.path == "/v1/responses" and sent.body["input"][-1] == {"type": "compaction_trigger"}
    assert sent.body["model"] == "gpt-5.4" and not sent.body.get("stream")
    assert compacted.output[0].type == "message" and compacted.output[-1].type == "compaction"
    rows = fresh.usage_rows(email)
    assert len(rows) == 1 and rows[0]["route"] == ROUTE


def test_a_compaction_is_never_streamed(fresh: ResponsesBox) -> None:
    _, key = fresh.new_key()
    body = {"model": OPENAI_MODEL, "input": "Hi.", "stream": True}
    with pytest.raises(openai.BadRequestError) as refused:
        fresh.openai(key).post("/responses/compact", cast_to=object, body=body)
    assert isinstance(refused.value.body, dict) and refused.value.body["param"] == "stream"
    assert not fresh.openai_fake.requests


def test_a_long_thread_is_not_held_to_the_small_body_limit(fresh: ResponsesBox) -> None:
    """An inference route reads bodies up to server.max_body_bytes once its key is known;
    a route without a key reads 256 KiB at most (a 413 past it), and a thread to compact is
    long by nature."""
    _, key = fresh.new_key()
    fresh.openai_fake.push(Reply(content="Long story short."))
    long = "word " * 80_000  # 400 KB
    compacted = fresh.openai(key).responses.compact(model=OPENAI_MODEL, input=long)
    assert compacted.output[-1].type == "compaction"
