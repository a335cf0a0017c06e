"""Tool calls as OpenAI-compatible servers stream them, through /v1/messages (tool_use blocks,
with the anthropic SDK) and /v1/responses (function_call items, with the openai SDK): the id
and name repeated on every delta (with or without `index`), the arguments whole in one chunk,
a "stop" finish for an answer of calls (Ollama), content null beside calls in an answer."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.fakes.compatible_wire import BASE, DONE, chunk, event
from tests.fakes.openai_upstream import Reply
from tests.quirks.conftest import MODEL, PRICES
from tests.quirks.routes import only_row
from tests.responses.conftest import ResponsesBox
from tests.support import usd_nanos

pytestmark = pytest.mark.timeout(60)
USAGE = {"prompt_tokens": 60, "completion_tokens": 18, "total_tokens": 78}
ARGS = ['{"city"', ': "Par', 'is"}']
CITY = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def _call(arguments: str, *, index: int | None = 0, header: bool = True) -> dict[str, Any]:
    piece: dict[str, Any] = {"function": {"arguments": arguments}}
    if index is not None:
        piece["index"] = index
    if header:
        piece |= {"id": "call_w1", "type": "function"}
        piece["function"]["name"] = "get_weather"
    return {"tool_calls": [piece]}


def _stream(deltas: list[dict[str, Any]], finish: str = "tool_calls") -> list[bytes]:
    body = [event(chunk({"role": "assistant", "content": None}))]
    body += [event(chunk(delta)) for delta in deltas]
    return [*body, event(chunk({}, finish)), event(BASE | {"choices": [], "usage": USAGE}), DONE]


def repeated_header_indexed() -> list[bytes]:
    return _stream([_call(piece) for piece in ARGS])


def repeated_header_no_index() -> list[bytes]:
    return _stream([_call(piece, index=None) for piece in ARGS])


def whole_in_one_chunk() -> list[bytes]:
    return _stream([_call("".join(ARGS))])


def stop_finish() -> list[bytes]:
    return _stream([_call(ARGS[0]), *(_call(p, header=False) for p in ARGS[1:])], "stop")


SHAPES: dict[str, Callable[[], list[bytes]]] = {
    "repeated-header-indexed": repeated_header_indexed,
    "repeated-header-no-index": repeated_header_no_index,
    "whole-in-one-chunk": whole_in_one_chunk,
    "stop-finish": stop_finish,
}


def _billed(box: ResponsesBox, email: str, start: int) -> None:
    row = only_row(box, email)
    cost = usd_nanos((60, PRICES["in"]), (18, PRICES["out"]))
    assert (row["estimated"], row["cost_nanos"]) == (0, cost)
    assert box.balance_nanos(email) == (start - cost, 0)


@pytest.mark.parametrize("shape", SHAPES)
def test_messages_get_one_tool_use(box: ResponsesBox, shape: str) -> None:
    email, key = box.new_key()
    start = box.balance_nanos(email)[0]
    box.openai_fake.push(Reply(raw=SHAPES[shape]()))
    tool = {"name": "get_weather", "description": "Weather", "input_schema": CITY}
    with box.client(key).messages.stream(
        model=MODEL, max_tokens=500, tools=[tool],
        messages=[{"role": "user", "content": "Weather in Paris?"}],
    ) as stream:  # fmt: skip
        message = stream.get_final_message()
    uses = [(b.type, getattr(b, "name", None), getattr(b, "input", None)) for b in message.content]
    assert uses == [("tool_use", "get_weather", {"city": "Paris"})]
    assert message.stop_reason == "tool_use"
    _billed(box, email, start)


@pytest.mark.parametrize("shape", SHAPES)
def test_responses_get_one_function_call(box: ResponsesBox, shape: str) -> None:
    email, key = box.new_key()
    start = box.balance_nanos(email)[0]
    box.openai_fake.push(Reply(raw=SHAPES[shape]()))
    tool = {"type": "function", "name": "get_weather", "parameters": CITY}
    with box.openai(key).responses.stream(
        model=MODEL, input="Weather in Paris?", tools=[tool]
    ) as stream:  # fmt: skip
        final = stream.get_final_response()
    calls = [(i.type, i.name, json.loads(i.arguments)) for i in final.output]
    assert calls == [("function_call", "get_weather", {"city": "Paris"})]
    assert final.status == "completed"
    _billed(box, email, start)


@pytest.mark.parametrize("route", ["messages", "responses"])
def test_an_answer_of_calls_with_content_null_and_no_role(box: ResponsesBox, route: str) -> None:
    """Not streamed: content null beside the calls, no `role`, fields of the server's own."""
    email, key = box.new_key()
    start = box.balance_nanos(email)[0]
    call = {
        "id": "call_w1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
    answer = {"id": "c1", "object": "chat.completion", "created": 1, "model": "m",
              "choices": [{"index": 0, "message": {"content": None, "tool_calls": [call]},
                           "finish_reason": "tool_calls", "stop_reason": None}],
              "usage": USAGE, "prompt_logprobs": None, "kv_transfer_params": None}  # fmt: skip
    box.openai_fake.push(Reply(raw=[json.dumps(answer).encode()], content_type="application/json"))
    if route == "messages":
        tool = {"name": "get_weather", "input_schema": CITY}
        message = box.client(key).messages.create(
            model=MODEL, max_tokens=500, tools=[tool],
            messages=[{"role": "user", "content": "Weather in Paris?"}],
        )  # fmt: skip
        assert [(b.type, b.input) for b in message.content] == [("tool_use", {"city": "Paris"})]
    else:
        tool = {"type": "function", "name": "get_weather", "parameters": CITY}
        final = box.openai(key).responses.create(model=MODEL, input="Paris?", tools=[tool])
        assert [(i.type, i.arguments) for i in final.output] == [
            ("function_call", '{"city": "Paris"}')]  # fmt: skip
    _billed(box, email, start)


def _call_with_id(
    arguments: str, call_id: str, *, named: bool, indexed: bool = True
) -> dict[str, Any]:
    piece: dict[str, Any] = {"id": call_id, "type": "function",
                             "function": {"arguments": arguments}}  # fmt: skip
    if indexed:
        piece["index"] = 0
    if named:
        piece["function"]["name"] = "get_weather"
    return {"tool_calls": [piece]}


def id_changes_after_the_first_delta() -> list[bytes]:
    """Poolside's API: the first delta's id (with the name), another id on every later one."""
    first, *rest = ARGS
    deltas = [_call_with_id(first, "call_first", named=True)]
    return _stream(deltas + [_call_with_id(piece, "call_later", named=False) for piece in rest])


def new_id_on_every_delta() -> list[bytes]:
    """mlx-openai-server before its fix: a fresh id on every delta, the name on the first."""
    deltas = [_call_with_id(piece, f"call_{n}", named=n == 0) for n, piece in enumerate(ARGS)]
    return _stream(deltas)


def new_id_and_name_on_every_delta() -> list[bytes]:
    """A fresh id on every delta, the same index and the name repeated on each: one call."""
    return _stream([_call_with_id(piece, f"call_{n}", named=True) for n, piece in enumerate(ARGS)])


def new_id_and_name_on_every_delta_no_index() -> list[bytes]:
    """The same without `index`: the pieces of one call all the same."""
    deltas = [_call_with_id(piece, f"call_{n}", named=True, indexed=False)
              for n, piece in enumerate(ARGS)]  # fmt: skip
    return _stream(deltas)


UNSTABLE_IDS: dict[str, Callable[[], list[bytes]]] = {
    "id-changes-after-the-first-delta": id_changes_after_the_first_delta,
    "new-id-on-every-delta": new_id_on_every_delta,
    "new-id-and-name-on-every-delta": new_id_and_name_on_every_delta,
    "new-id-and-name-on-every-delta-no-index": new_id_and_name_on_every_delta_no_index,
}


@pytest.mark.parametrize("shape", UNSTABLE_IDS)
def test_messages_get_one_tool_use_whatever_its_ids(box: ResponsesBox, shape: str) -> None:
    """A delta with another id but no name continues the call it follows: a new call always
    begins with its name."""
    email, key = box.new_key()
    start = box.balance_nanos(email)[0]
    box.openai_fake.push(Reply(raw=UNSTABLE_IDS[shape]()))
    tool = {"name": "get_weather", "description": "Weather", "input_schema": CITY}
    with box.client(key).messages.stream(
        model=MODEL, max_tokens=500, tools=[tool],
        messages=[{"role": "user", "content": "Weather in Paris?"}],
    ) as stream:  # fmt: skip
        message = stream.get_final_message()
    uses = [(b.type, getattr(b, "name", None), getattr(b, "input", None)) for b in message.content]
    assert uses == [("tool_use", "get_weather", {"city": "Paris"})]
    _billed(box, email, start)


@pytest.mark.parametrize("shape", UNSTABLE_IDS)
def test_responses_get_one_function_call_whatever_its_ids(box: ResponsesBox, shape: str) -> None:
    email, key = box.new_key()
    start = box.balance_nanos(email)[0]
    box.openai_fake.push(Reply(raw=UNSTABLE_IDS[shape]()))
    tool = {"type": "function", "name": "get_weather", "parameters": CITY}
    with box.openai(key).responses.stream(
        model=MODEL, input="Weather in Paris?", tools=[tool]
    ) as stream:  # fmt: skip
        final = stream.get_final_response()
    calls = [(i.type, i.name, json.loads(i.arguments)) for i in final.output]
    assert calls == [("function_call", "get_weather", {"city": "Paris"})]
    _billed(box, email, start)


@pytest.mark.parametrize("route", ["chat", "messages", "responses"])
@pytest.mark.parametrize("shape", UNSTABLE_IDS)
def test_a_stream_for_an_answer_gets_one_call_whatever_its_ids(
    box: ResponsesBox, shape: str, route: str
) -> None:
    """The same streams answering an unstreamed call (a server that always streams): the
    pieces merged into one call."""
    email, key = box.new_key()
    start = box.balance_nanos(email)[0]
    box.openai_fake.push(Reply(raw=UNSTABLE_IDS[shape]()))
    if route == "chat":
        answer = box.openai(key).chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Weather in Paris?"}]
        )
        calls = [(c.function.name, json.loads(c.function.arguments))
                 for c in answer.choices[0].message.tool_calls or []]  # fmt: skip
    elif route == "messages":
        message = box.client(key).messages.create(
            model=MODEL, max_tokens=500, messages=[{"role": "user", "content": "Paris?"}]
        )
        calls = [(b.name, b.input) for b in message.content if b.type == "tool_use"]
    else:
        final = box.openai(key).responses.create(model=MODEL, input="Weather in Paris?")
        calls = [(i.name, json.loads(i.arguments)) for i in final.output]
    assert calls == [("get_weather", {"city": "Paris"})]
    _billed(box, email, start)


def parallel_calls_at_index_0() -> list[bytes]:
    """A server that numbers every parallel call 0: two calls of one function, each with its
    own id and its arguments whole before the next begins."""
    pieces = [("call_a", '{"city": "Paris"}'), ("call_b", '{"city": "Rome"}')]
    return _stream([_call_with_id(args, call_id, named=True) for call_id, args in pieces])


@pytest.mark.parametrize(
    ("route", "stream"),
    [("chat", False), ("messages", False), ("messages", True), ("responses", False),
     ("responses", True)],
)  # fmt: skip
def test_parallel_calls_at_one_index_stay_two(box: ResponsesBox, route: str, stream: bool) -> None:
    """The rule that keeps a new-id-per-piece call one call keeps these two: the first one's
    arguments were whole when the second id came."""
    _email, key = box.new_key()
    box.openai_fake.push(Reply(raw=parallel_calls_at_index_0()))
    if route == "chat":
        answer = box.openai(key).chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Weather?"}]
        )
        calls = [(c.id, json.loads(c.function.arguments))
                 for c in answer.choices[0].message.tool_calls or []]  # fmt: skip
    elif route == "messages":
        ask = [{"role": "user", "content": "Weather?"}]
        request: dict[str, Any] = {"model": MODEL, "max_tokens": 500, "messages": ask}
        if stream:
            with box.client(key).messages.stream(**request) as events:
                message = events.get_final_message()
        else:
            message = box.client(key).messages.create(**request)
        calls = [(b.id, b.input) for b in message.content if b.type == "tool_use"]
    else:
        client = box.openai(key)
        if stream:
            with client.responses.stream(model=MODEL, input="Weather?") as events:
                final = events.get_final_response()
        else:
            final = client.responses.create(model=MODEL, input="Weather?")
        calls = [(i.call_id, json.loads(i.arguments)) for i in final.output]
    assert calls == [("call_a", {"city": "Paris"}), ("call_b", {"city": "Rome"})]
