"""An upstream's JSON nested deeper than Python's json reads (RecursionError, which is no
ValueError): an error answer, a stream event, a model's tool arguments. Each was a 500
'internal error' with a traceback in the log (and a failed call no retry or other key saw);
they now read as what is not JSON reads: the error answer relayed with its status, the event a
malformed one (a free 502), the arguments as arguments that are no JSON."""

from __future__ import annotations

import base64
import json

import pytest

from tests.fakes.hostile_upstream import SSE, Act, HostileUpstream, anthropic_body, chat_body
from tests.hostile.conftest import HostileBox, body_of, until_the_key_is_back

pytestmark = pytest.mark.timeout(60)
DEEP = "[" * 1500 + "]" * 1500  # under the suite's max_sse_event_bytes (4096), past json's depth
CALLS = [("ho", "chat"), ("ha", "messages"), ("hr", "responses"), ("ha", "chat"),
         ("ho", "messages")]  # fmt: skip


@pytest.mark.parametrize(("kind", "route"), CALLS)
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_an_error_answer_nested_too_deep_is_relayed_with_its_status(
    box: HostileBox, hostile: HostileUpstream, kind: str, route: str, stream: bool
) -> None:
    email, key = box.new_user("10")
    hostile.push(Act(400, [DEEP.encode()]))
    answer = box.post(key, route, kind, stream=stream)
    assert answer.status_code == 400, answer.text[:300]
    row = box.last_row(email)
    assert (row["status"], row["cost_nanos"]) == ("error", 0), row


@pytest.mark.parametrize(("kind", "route"), CALLS)
def test_a_stream_event_nested_too_deep_is_a_malformed_one(
    box: HostileBox, hostile: HostileUpstream, kind: str, route: str
) -> None:
    email, key = box.new_user("10")
    hostile.push(*[Act(200, [f"data: {DEEP}\n\n".encode()], SSE) for _ in range(4)])
    answer = box.post(key, route, kind, stream=True)
    assert answer.status_code == 502, answer.text[:300]
    assert "internal error" not in answer.text, answer.text[:300]
    row = box.last_row(email)
    assert (row["status"], row["cost_nanos"]) == ("error", 0), row


def test_tool_arguments_nested_too_deep_reach_a_messages_client(
    box: HostileBox, hostile: HostileUpstream
) -> None:
    """A model's arguments that deep (what a user may prompt it to write) in a whole answer,
    translated to a tool_use block: its input `{}`, as for any arguments that are no JSON
    object, the call relayed and charged (it was a free 500)."""
    email, key = box.new_user("10")
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": DEEP}}
    body = json.loads(chat_body())
    body["choices"][0]["message"]["tool_calls"] = [call]
    hostile.push(Act(200, [json.dumps(body).encode()]))
    answer = box.post(key, "messages", "ho", stream=False)
    assert answer.status_code == 200, answer.text[:300]
    (use,) = [b for b in answer.json()["content"] if b["type"] == "tool_use"]
    assert (use["name"], use["input"]) == ("f", {}), use
    row = box.last_row(email)
    assert row["status"] == "ok" and row["cost_nanos"] > 0, row


def test_a_clients_tool_arguments_nested_too_deep_are_a_400_or_an_empty_input(
    box: HostileBox, hostile: HostileUpstream
) -> None:
    """A client's own: a chat assistant's call handed to an `anthropic` model is the 400 any
    arguments that are no JSON get; a Responses function_call item handed back goes as `{}`
    (as arguments that are no JSON object do). Both were a 500."""
    _, key = box.new_user("10")
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": DEEP}}
    messages = [{"role": "user", "content": "hi"},
                {"role": "assistant", "content": None, "tool_calls": [call]},
                {"role": "tool", "tool_call_id": "call_1", "content": "done"}]  # fmt: skip
    with box.http(key) as http:
        answer = http.post("/v1/chat/completions", json={"model": "ha/m", "messages": messages})
    assert answer.status_code == 400, answer.text[:300]
    assert "not valid JSON" in answer.json()["error"]["message"], answer.text[:300]
    hostile.push(Act(200, [anthropic_body()]))
    items = [{"role": "user", "content": "hi"},
             {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": DEEP},
             {"type": "function_call_output", "call_id": "call_1", "output": "done"}]  # fmt: skip
    with box.http(key) as http:
        answer = http.post("/v1/responses", json={"model": "ha/m", "input": items})
    assert answer.status_code == 200, answer.text[:300]
    (sent,) = [b for m in hostile.seen[-1].body["messages"] for b in m["content"]
               if isinstance(b, dict) and b.get("type") == "tool_use"]  # fmt: skip
    assert sent["input"] == {}, sent


def test_an_error_event_nested_too_deep_fails_the_call_for_free(
    box: HostileBox, hostile: HostileUpstream
) -> None:
    """`event: error` first in an anthropic stream, its data nested that deep: the stream's
    failure (a 502), not a 500."""
    email, key = box.new_user("10")
    hostile.push(*[Act(200, [f"event: error\ndata: {DEEP}\n\n".encode()], SSE) for _ in range(4)])
    answer = box.post(key, "messages", "ha", stream=True)
    assert answer.status_code == 502, answer.text[:300]
    row = box.last_row(email)
    assert (row["status"], row["cost_nanos"]) == ("error", 0), row


def test_a_reasoning_item_sealing_json_nested_too_deep_is_no_reasoning(
    box: HostileBox, hostile: HostileUpstream
) -> None:
    """A client's reasoning item whose encrypted_content wears the box's prefix over JSON
    nested that deep (tampered): no thinking blocks, as for any tampered value; it was a 500."""
    _, key = box.new_user("10")
    sealed = "codelace-thinking-v1:" + base64.urlsafe_b64encode(DEEP.encode()).decode()
    items = [{"role": "user", "content": "hi"},
             {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": sealed},
             {"role": "assistant", "content": "ok"},
             {"role": "user", "content": "go on"}]  # fmt: skip
    hostile.push(Act(200, [anthropic_body()]))
    with box.http(key) as http:
        answer = http.post("/v1/responses", json={"model": "ha/m", "input": items})
    assert answer.status_code == 200, answer.text[:300]
    sent = [b for m in hostile.seen[-1].body["messages"] if isinstance(m["content"], list)
            for b in m["content"]]  # fmt: skip
    assert not [b for b in sent if b.get("type") == "thinking"], sent


def test_a_key_probe_answered_nested_too_deep_is_no_500(
    box: HostileBox, hostile: HostileUpstream
) -> None:
    """A call's provider key refused (401), its probe (GET /v1/models) refusing it with a body
    nested that deep: the probe's verdict as for a body that is no JSON (catalog/keycheck.py
    caught ValueError only, for a model list too), the call on the other key; it was the
    user's 500."""
    _, key = box.new_user("10")
    refused = "sk-ho-key-0001"
    hostile.default = body_of("ho")
    hostile.key_acts[refused] = Act(401, [b'{"error": {"message": "bad key"}}'])
    hostile.probe_acts[refused] = Act(401, [DEEP.encode()])
    for _ in range(3):
        answer = box.post(key, "chat", "ho", stream=False)
        assert answer.status_code == 200, answer.text[:300]
    assert refused in hostile.probes
    hostile.key_acts.clear()
    hostile.probe_acts.clear()
    until_the_key_is_back(box, hostile, key, "chat", "ho", refused)


def test_an_answer_too_large_whose_usage_is_nested_too_deep_is_a_502(
    box: HostileBox, hostile: HostileUpstream
) -> None:
    """An answer past the body limit, its tail's `usage` nested that deep: the box looks for
    the usage to charge in the tail (gateway/oversized.py caught ValueError only): a 500
    'internal error' where any answer too large is a 502 upstream_too_large, charged an
    estimate."""
    email, key = box.new_user("10")
    body = json.loads(chat_body())
    body["choices"][0]["message"]["content"] = "x" * 20_000
    del body["usage"]
    hostile.push(Act(200, [json.dumps(body)[:-1].encode() + b', "usage": ' + DEEP.encode() + b"}"]))
    answer = box.post(key, "chat", "ho", stream=False)
    assert answer.status_code == 502, answer.text[:300]
    row = box.last_row(email)
    assert (row["status"], row["error_code"]) == ("error", "upstream_too_large"), row
