"""Tool calls as OpenAI-compatible servers stream them, through /v1/chat/completions with the
openai SDK's stream helper (`chat.completions.stream(...).get_final_completion()`), which
gathers the pieces by `index` and joins every string it is given twice: the client gets
OpenAI's own shape (an integer `index` distinct per call and stable across its pieces; the
id, type and name on a call's first piece only; the arguments as sent), whatever the server
sent: the header repeated on every piece, no `index` (Gemini's OpenAI-compatible endpoint),
every parallel call at index 0, a new id on every piece (mlx-openai-server, Poolside)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.fakes.openai_upstream import Reply
from tests.quirks.conftest import MODEL
from tests.quirks.test_tool_call_shapes import (
    ARGS,
    CITY,
    UNSTABLE_IDS,
    _call_with_id,
    _stream,
    parallel_calls_at_index_0,
    repeated_header_indexed,
    repeated_header_no_index,
)
from tests.responses.conftest import ResponsesBox

pytestmark = pytest.mark.timeout(60)
PARIS = '{"city": "Paris"}'
ROME = '{"city": "Rome"}'
ONE_CALL = [("call_w1", "get_weather", PARIS)]
TWO_CALLS = [("call_a", "get_weather", PARIS), ("call_b", "get_weather", ROME)]
STRICT = CITY | {"additionalProperties": False}  # (the SDK parses the arguments of strict tools)
TOOL = {"type": "function",
        "function": {"name": "get_weather", "parameters": STRICT, "strict": True}}  # fmt: skip


def gemini_parallel_calls() -> list[bytes]:
    """Gemini's OpenAI-compatible stream: each call whole in one piece, with its id and no
    `index`, two parallel calls one after the other."""
    pieces = [("call_a", PARIS), ("call_b", ROME)]
    return _stream([_call_with_id(args, call_id, named=True, indexed=False)
                    for call_id, args in pieces])  # fmt: skip


def headers_first_no_index() -> list[bytes]:
    """No `index`, each call's id and name repeated on each of its pieces, two calls."""
    deltas = [_call_with_id(piece, "call_a", named=True, indexed=False) for piece in ARGS]
    rome = ['{"city"', ': "Rome"}']
    deltas += [_call_with_id(piece, "call_b", named=True, indexed=False) for piece in rome]
    return _stream(deltas)


SHAPES: dict[str, tuple[Callable[[], list[bytes]], list[tuple[str, str, str]]]] = {
    "repeated-header-indexed": (repeated_header_indexed, ONE_CALL),
    "repeated-header-no-index": (repeated_header_no_index, ONE_CALL),
    "no-index-parallel": (gemini_parallel_calls, TWO_CALLS),
    "no-index-header-repeated-parallel": (headers_first_no_index, TWO_CALLS),
    "parallel-calls-at-index-0": (parallel_calls_at_index_0, TWO_CALLS),
    "id-changes-after-the-first-delta": (UNSTABLE_IDS["id-changes-after-the-first-delta"],
                                         [("call_first", "get_weather", PARIS)]),
    "new-id-on-every-delta": (UNSTABLE_IDS["new-id-on-every-delta"],
                              [("call_0", "get_weather", PARIS)]),
    "new-id-and-name-on-every-delta": (UNSTABLE_IDS["new-id-and-name-on-every-delta"],
                                       [("call_0", "get_weather", PARIS)]),
    "new-id-and-name-on-every-delta-no-index": (
        UNSTABLE_IDS["new-id-and-name-on-every-delta-no-index"],
        [("call_0", "get_weather", PARIS)]),
}  # fmt: skip


def _final_calls(box: ResponsesBox, key: str) -> tuple[list[tuple[Any, ...]], Any]:
    with box.openai(key).chat.completions.stream(
        model=MODEL, messages=[{"role": "user", "content": "Weather?"}], tools=[TOOL]
    ) as stream:  # fmt: skip
        final = stream.get_final_completion()
    choice = final.choices[0]
    calls = [(c.id, c.function.name, c.function.arguments) for c in choice.message.tool_calls or []]
    return calls, choice


@pytest.mark.parametrize("shape", SHAPES)
def test_the_sdk_stream_helper_gets_the_calls_sent(box: ResponsesBox, shape: str) -> None:
    _email, key = box.new_key()
    builder, expected = SHAPES[shape]
    box.openai_fake.push(Reply(raw=builder()))
    calls, choice = _final_calls(box, key)
    assert calls == expected
    assert [c.type for c in choice.message.tool_calls] == ["function"] * len(expected)
    assert [c.function.parsed_arguments for c in choice.message.tool_calls] == [
        json.loads(arguments) for _id, _name, arguments in expected]  # fmt: skip
    assert choice.finish_reason == "tool_calls"


def _raw_chunks(box: ResponsesBox, key: str) -> list[dict[str, Any]]:
    """The chunks the client was sent, as JSON (the SDK's plain stream, not its helper)."""
    response = box.openai(key).chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": "Weather?"}], tools=[TOOL],
        stream=True,
    )  # fmt: skip
    chunks = []
    for line in response.http_response.iter_lines():
        if line.startswith("data: ") and line != "data: [DONE]":
            chunks.append(json.loads(line[len("data: ") :]))
    return chunks


@pytest.mark.parametrize("shape", SHAPES)
def test_each_piece_is_in_openais_shape(box: ResponsesBox, shape: str) -> None:
    """Every piece has an integer index, one per call in the order calls begin; the id, type
    and name come on a call's first piece only; the arguments are the pieces sent, in order."""
    _email, key = box.new_key()
    builder, expected = SHAPES[shape]
    box.openai_fake.push(Reply(raw=builder()))
    headers: list[tuple[Any, ...]] = []
    arguments: dict[int, str] = {}
    for sent in _raw_chunks(box, key):
        for choice in sent.get("choices") or []:
            for piece in choice["delta"].get("tool_calls") or []:
                index = piece["index"]
                assert isinstance(index, int)
                function = piece.get("function") or {}
                if index not in arguments:
                    assert index == len(arguments)
                    headers.append((piece["id"], piece["type"], function["name"]))
                    arguments[index] = ""
                else:
                    assert {"id", "type"}.isdisjoint(piece) and "name" not in function, piece
                arguments[index] += function.get("arguments") or ""
    assert headers == [(i, "function", name) for i, name, _args in expected]
    assert list(arguments.values()) == [args for _i, _n, args in expected]


def canonical_stream() -> list[bytes]:
    """OpenAI's own stream of two parallel calls."""
    deltas: list[dict[str, Any]] = []
    for index, (call_id, args) in enumerate((("call_a", PARIS), ("call_b", ROME))):
        function = {"name": "get_weather", "arguments": ""}
        deltas.append({"tool_calls": [{"index": index, "id": call_id, "type": "function",
                                       "function": function}]})  # fmt: skip
        for piece in (args[:5], args[5:]):
            deltas.append({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
    return _stream(deltas)


def test_openais_own_stream_passes_as_it_came(box: ResponsesBox) -> None:
    _email, key = box.new_key()
    sent = [json.loads(line[len(b"data: "):]) for line in canonical_stream()
            if line.startswith(b"data: {")]  # fmt: skip
    box.openai_fake.push(Reply(raw=canonical_stream()))
    got = _raw_chunks(box, key)
    deltas = [c["choices"][0]["delta"] for c in got if c.get("choices")]
    assert deltas == [c["choices"][0]["delta"] for c in sent if c.get("choices")]
    assert {c["model"] for c in got} == {MODEL}
    box.openai_fake.push(Reply(raw=canonical_stream()))
    assert _final_calls(box, key)[0] == TWO_CALLS


def test_an_answer_of_calls_without_ids_reads(box: ResponsesBox) -> None:
    """Not streamed: calls without an id (nor an index, which an answer never has) read as
    they came with the SDK."""
    _email, key = box.new_key()
    calls = [{"type": "function", "function": {"name": "get_weather", "arguments": args}}
             for args in (PARIS, ROME)]  # fmt: skip
    answer = {"id": "c1", "object": "chat.completion", "created": 1, "model": "m",
              "choices": [{"index": 0, "message": {"role": "assistant", "content": None,
                                                   "tool_calls": calls},
                           "finish_reason": "tool_calls"}],
              "usage": {"prompt_tokens": 5, "completion_tokens": 5,
                        "total_tokens": 10}}  # fmt: skip
    box.openai_fake.push(Reply(raw=[json.dumps(answer).encode()], content_type="application/json"))
    completion = box.openai(key).chat.completions.parse(
        model=MODEL, messages=[{"role": "user", "content": "Weather?"}], tools=[TOOL]
    )  # fmt: skip
    got = [(c.function.name, c.function.parsed_arguments)
           for c in completion.choices[0].message.tool_calls or []]  # fmt: skip
    assert got == [("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Rome"})]
