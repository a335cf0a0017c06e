"""providers/call_keys.py alone: which call each streamed piece belongs to (the shapes of
OpenAI and of the compatible servers), and the pieces rewritten in OpenAI's shape for the chat
route (OpenAI's own left as they came, the very objects); the calls of a stream merged into one
answer (openai_merge: a server that streams when asked not to) and of a Responses stream made
from it (responses_stream) told apart alike."""

from __future__ import annotations

import json
from typing import Any

import pytest

from codelace_box.providers.base import SSEEvent
from codelace_box.providers.call_keys import CallKeys, CanonicalCalls
from codelace_box.providers.openai_merge import completion_from_stream
from codelace_box.providers.responses_request import translate_request
from codelace_box.providers.responses_stream import ResponsesStreamTranslator

JSON = dict[str, Any]


def piece(args: str, call_id: str | None = None, name: str | None = None, **more: Any) -> JSON:
    """A tool call piece: `index` only when given in `more`."""
    out: JSON = {**more, "function": {"arguments": args}}
    if call_id is not None:
        out |= {"id": call_id, "type": "function"}
    if name is not None:
        out["function"]["name"] = name
    return out


W = "get_weather"
SHAPES: dict[str, tuple[list[JSON], list[int]]] = {
    "openai": ([piece("", "a", W, index=0), piece('{"c', index=0), piece('ity": 1}', index=0),
                piece("", "b", W, index=1), piece("{}", index=1)], [0, 0, 0, 1, 1]),
    "header repeated": ([piece('{"c', "a", W, index=0), piece('ity": 1}', "a", W, index=0)],
                        [0, 0]),
    "no index": ([piece('{"c', "a", W), piece('ity": 1}', "a", W), piece("{}", "b", W)],
                 [0, 0, 1]),
    "no index, no id": ([piece('{"c'), piece('ity": 1}')], [0, 0]),
    "parallel calls at 0": ([piece('{"c": 1}', "a", W, index=0), piece("{}", "b", W, index=0),
                             piece("", index=0)], [0, 1, 1]),
    "new id on every piece": ([piece('{"c', "a", W, index=0), piece('ity": 1}', "b", index=0)],
                              [0, 0]),
    "new id and name on every piece": ([piece('{"c', "a", W), piece('ity"', "b", W),
                                        piece(": 1}", "c", W), piece("{}", "d", W)],
                                       [0, 0, 0, 1]),
    "another function at 0": ([piece('{"c', "a", W, index=0), piece("{}", "b", "other", index=0)],
                              [0, 1]),
    "interleaved without index": ([piece('{"c', "a", W), piece('{"d', "b", "other"),
                                   piece('": 1}', "a"), piece('": 2}', "b")], [0, 1, 0, 1]),
    "a new call at 0 after one at 1": ([piece("{}", "a", W, index=0), piece("{}", "b", W, index=1),
                                        piece("{}", "c", W, index=0)], [0, 1, 2]),
    # Each call whole in one piece with its name, but no new id (none, or the same one for
    # every call: relays of Gemini's parallel calls, servers that give calls one id): a named
    # piece with arguments after a call's whole arguments begins a new call.
    "whole calls at 0, one id": ([piece('{"c": 1}', "a", W, index=0),
                                  piece('{"c": 2}', "a", W, index=0)], [0, 1]),
    "whole calls, no index, no id": ([piece('{"c": 1}', name=W), piece('{"c": 2}', name=W),
                                      piece('{"c": 3}', name="other")], [0, 1, 2]),
    "one id, no index, in pieces": ([piece('{"c', "a", W), piece('": 1}', "a"),
                                     piece('{"c', "a", W), piece('": 2}', "a")], [0, 0, 1, 1]),
    "header repeated after the arguments": ([piece("", "a", W, index=0),
                                             piece('{"c": 1}', index=0),
                                             piece("", "a", W, index=0)], [0, 0, 0]),
}  # fmt: skip


@pytest.mark.parametrize("shape", SHAPES)
def test_the_calls_are_told_apart(shape: str) -> None:
    pieces, calls = SHAPES[shape]
    keys = CallKeys()
    seen: dict[Any, int] = {}
    assert [seen.setdefault(keys.key_of(p), len(seen)) for p in pieces] == calls


def test_openais_own_pieces_are_left_as_they_came() -> None:
    canonical = CanonicalCalls()
    for one in SHAPES["openai"][0]:
        assert canonical.rewrite(0, [one])[0] is one


@pytest.mark.parametrize("shape", [s for s in SHAPES if s != "openai"])
def test_each_call_gets_an_index_and_its_header_once(shape: str) -> None:
    pieces, calls = SHAPES[shape]
    out = CanonicalCalls().rewrite(0, pieces)
    assert [p["index"] for p in out] == calls
    assert [p["function"]["arguments"] for p in out] == [p["function"]["arguments"] for p in pieces]
    for n, (sent, was) in enumerate(zip(out, pieces, strict=True)):
        first = calls.index(calls[n]) == n
        if first:
            assert sent["type"] == "function"
            assert (sent.get("id"), sent["function"].get("name")) == (
                was.get("id"), was["function"].get("name"))  # fmt: skip
        else:
            assert {"id", "type"}.isdisjoint(sent) and "name" not in sent["function"], sent


def test_a_header_in_two_pieces_is_kept_whole() -> None:
    """The name on a later piece than the id (the first had none): sent once, there."""
    out = CanonicalCalls().rewrite(0, [piece("", "a", index=0), piece('{"c": 1}', "a", W, index=0)])
    assert out == [
        {"index": 0, "id": "a", "type": "function", "function": {"arguments": ""}},
        {"index": 0, "function": {"arguments": '{"c": 1}', "name": W}},
    ]


def test_a_later_null_type_is_left_out() -> None:
    """A type of null on a later piece (the SDK would take it as the call's type)."""
    first, later = (
        piece("", "a", W, index=0),
        {"index": 0, "type": None, "id": None, "function": {"arguments": "{}", "name": None}},
    )
    assert CanonicalCalls().rewrite(0, [first, later])[1] == {
        "index": 0, "function": {"arguments": "{}"}}  # fmt: skip


def test_choices_number_their_calls_apart() -> None:
    canonical = CanonicalCalls()
    a = canonical.rewrite(0, [piece("{}", "a", W), piece("{}", "b", W)])
    b = canonical.rewrite(1, [piece("{}", "c", W)])
    assert [p["index"] for p in a + b] == [0, 1, 0]


def _calls(shape: str) -> list[tuple[Any, str]]:
    """The calls a shape's pieces make: each call's first id and its arguments, in order."""
    pieces, calls = SHAPES[shape]
    want: dict[int, tuple[Any, str]] = {}
    for one, call in zip(pieces, calls, strict=True):
        first_id, arguments = want.get(call, (one.get("id"), ""))
        want[call] = (first_id, arguments + one["function"]["arguments"])
    return list(want.values())


def _chunks(shape: str) -> list[JSON]:
    head = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    return [head | {"choices": [{"index": 0, "delta": {"tool_calls": [one]}}]}
            for one in SHAPES[shape][0]]  # fmt: skip


@pytest.mark.parametrize("shape", SHAPES)
def test_a_merged_stream_has_the_same_calls_in_the_order_they_began(shape: str) -> None:
    """The answer made of a stream (openai_merge): a call for each call told apart, in the
    order they began (as the streamed chat route numbers them), its first id, its arguments."""
    answer = completion_from_stream([SSEEvent(json.dumps(chunk)) for chunk in _chunks(shape)])
    assert answer is not None
    got = answer["choices"][0]["message"]["tool_calls"]
    assert [(c["id"], c["function"]["arguments"]) for c in got] == _calls(shape)


@pytest.mark.parametrize("shape", SHAPES)
def test_a_responses_stream_has_an_item_for_each_call(shape: str) -> None:
    """The Responses stream made of a chat stream: a function_call item for each call told
    apart, in the order they began (a call begun while another's arguments are not whole
    follows it whole), with its first id and its arguments."""
    context = translate_request({"model": "m", "input": "Hi", "stream": True}).context
    stream = ResponsesStreamTranslator(context, model="m")
    stream.start()
    for chunk in _chunks(shape):
        stream.feed(chunk)
    output = stream.complete(None)[-1]["response"]["output"]
    given_ids: set[Any] = set()  # an id an earlier call has: the item gets one of its own
    want = [(i if given_ids.isdisjoint([i]) and not given_ids.add(i) else None, arguments)
            for i, arguments in _calls(shape)]  # fmt: skip
    assert len(output) == len(want)
    got = [(item["call_id"] if given else None, item["arguments"])  # (else one of its own)
           for item, (given, _) in zip(output, want, strict=True)]  # fmt: skip
    assert got == want


# A call streamed in pieces, then sent again whole in a last piece with its id and name (gateways
# that end a streamed call with a consolidated one, GLM-style servers): one call, not two.
RESENT = [piece("", "t1", "shell", index=0), piece('{"command": "rm -r build"}', index=0),
          piece('{"command":"rm -r build"}', "t1", "shell", index=0)]  # fmt: skip


def test_a_call_sent_again_whole_is_one_call_on_every_path() -> None:
    """The last piece repeats the call (its id, its name, the same arguments): it is dropped
    on the chat route, in a merged answer and in a Responses stream. A second call of the same
    id made the client run the command twice (the chat route gave it index 1, the Responses
    route a second function_call item)."""
    assert [p["index"] for p in CanonicalCalls().rewrite(0, RESENT)] == [0, 0]
    head = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    chunks = [head | {"choices": [{"index": 0, "delta": {"tool_calls": [one]}}]} for one in RESENT]
    answer = completion_from_stream([SSEEvent(json.dumps(chunk)) for chunk in chunks])
    assert answer is not None
    calls = answer["choices"][0]["message"]["tool_calls"]
    assert [(c["id"], c["function"]["arguments"]) for c in calls] == [
        ("t1", '{"command": "rm -r build"}')]  # fmt: skip
    context = translate_request({"model": "m", "input": "Hi", "stream": True}).context
    stream = ResponsesStreamTranslator(context, model="m")
    stream.start()
    for chunk in chunks:
        stream.feed(chunk)
    output = stream.complete(None)[-1]["response"]["output"]
    assert [(i["call_id"], i["arguments"]) for i in output] == [
        ("t1", '{"command": "rm -r build"}')]  # fmt: skip


def test_a_thought_signature_on_the_call_sent_again_is_kept() -> None:
    """Gemini's thought signature (`extra_content`) only on the piece that sends the call again
    whole: the copy is dropped, its signature is not (the merged answer's call and the chat
    route's pieces keep it; without it Gemini refuses the next turn, 400 "Function call is
    missing a thought_signature")."""
    signed = {"google": {"thought_signature": "c2ln"}}
    pieces = [*RESENT[:2], RESENT[2] | {"extra_content": signed}]
    out = CanonicalCalls().rewrite(0, pieces)
    assert [p["index"] for p in out] == [0, 0, 0]
    assert [p.get("extra_content") for p in out] == [None, None, signed]
    assert out[2]["function"] == {"arguments": ""} and "id" not in out[2]  # (nothing twice)
    head = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    chunks = [head | {"choices": [{"index": 0, "delta": {"tool_calls": [one]}}]} for one in pieces]
    answer = completion_from_stream([SSEEvent(json.dumps(chunk)) for chunk in chunks])
    assert answer is not None
    calls = answer["choices"][0]["message"]["tool_calls"]
    assert [(c["function"]["arguments"], c.get("extra_content")) for c in calls] == [
        ('{"command": "rm -r build"}', signed)]  # fmt: skip


def test_parallel_calls_of_one_id_with_other_arguments_stay_two() -> None:
    """Whole calls of one id whose arguments differ are two calls (not a call sent again)."""
    pieces = [piece("", "t1", "shell", index=0), piece('{"command": "ls"}', index=0),
              piece('{"command": "pwd"}', "t1", "shell", index=0)]  # fmt: skip
    assert [p["index"] for p in CanonicalCalls().rewrite(0, pieces)] == [0, 0, 1]
