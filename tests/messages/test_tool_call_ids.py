"""/v1/messages to an `openai` provider: each tool_use of a translated answer has an id of its
own, even where the server gives several calls of one answer the same id (DeepSeek, GLM and
Kimi-style servers reuse one for parallel calls). Anthropic refuses a history whose tool_use
ids repeat, Claude Code drops a tool_use whose id it has seen, and the next turn's results
could not be told apart upstream."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fakes.openai_upstream import Reply
from tests.messages.conftest import NEEDS_SDK, OPENAI_ALIAS, MessagesBox, openai_chunk

pytestmark = NEEDS_SDK

SCHEMA = {"type": "object", "properties": {"path": {"type": "string"}}}
TOOLS = [{"name": "Read", "input_schema": SCHEMA}]
ASK = [{"role": "user", "content": "Read a and b."}]
USAGE = {"prompt_tokens": 40, "completion_tokens": 12, "total_tokens": 52}


def _call(index: int, path: str) -> dict[str, Any]:
    function = {"name": "Read", "arguments": json.dumps({"path": path})}
    return {"index": index, "id": "call_same", "type": "function", "function": function}


def _same_ids(streamed: bool) -> Reply:
    """Two calls of one answer, both with the id `call_same`."""
    calls = [_call(0, "a"), _call(1, "b")]
    if streamed:
        raw = [openai_chunk({"role": "assistant", "tool_calls": [calls[0]]}),
               openai_chunk({"tool_calls": [calls[1]]}), openai_chunk({}, "tool_calls"),
               openai_chunk({}, usage=USAGE), b"data: [DONE]\n\n"]  # fmt: skip
        return Reply(raw=raw)
    for call in calls:
        del call["index"]
    message = {"role": "assistant", "content": None, "tool_calls": calls}
    answer = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
              "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
              "usage": USAGE}  # fmt: skip
    return Reply(raw=[json.dumps(answer).encode()], content_type="application/json")


@pytest.mark.parametrize("streamed", [False, True])
def test_calls_sharing_an_id_get_ids_of_their_own(fresh: MessagesBox, streamed: bool) -> None:
    _, key = fresh.new_key()
    client = fresh.client(key)
    fresh.openai_fake.push(_same_ids(streamed))
    asked: dict[str, Any] = {"model": OPENAI_ALIAS, "max_tokens": 200, "tools": TOOLS}
    if streamed:
        with client.messages.stream(messages=ASK, **asked) as stream:
            message = stream.get_final_message()
    else:
        message = client.messages.create(messages=ASK, **asked)
    calls = [block for block in message.content if block.type == "tool_use"]
    assert [call.input for call in calls] == [{"path": "a"}, {"path": "b"}]
    assert len({call.id for call in calls}) == 2, [call.id for call in calls]
    results = [{"type": "tool_result", "tool_use_id": c.id, "content": f"file {c.input['path']}"}
               for c in calls]  # fmt: skip
    said = [c.model_dump(exclude_none=True) for c in calls]
    turn = [*ASK, {"role": "assistant", "content": said}, {"role": "user", "content": results}]
    sent = fresh.translated(key, {**asked, "messages": turn})["messages"]
    made = {call["id"]: json.loads(call["function"]["arguments"])["path"]
            for call in sent[1]["tool_calls"]}  # fmt: skip
    answered = {m["tool_call_id"]: m["content"] for m in sent[2:] if m["role"] == "tool"}
    assert len(made) == 2 and {answered[i] for i in made} == {"file a", "file b"}
    assert all(answered[i] == f"file {path}" for i, path in made.items())
