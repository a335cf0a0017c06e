"""The request path's JSON (orjson) gives the json module's values and errors."""

from __future__ import annotations

import asyncio
import json
import math
import sys
import time
from typing import Any

import pytest

from codelace_box.jsonwire import dumps, dumps_between_turns, loads

SAME_VALUE = [
    b'{"model":"m","messages":[{"role":"user","content":"hi \\u00e9 \xc3\xa9"}],"max_tokens":64}',
    b'{"a":123456789012345678901234567890}',  # orjson alone reads a float here
    b'{"a":-9223372036854775809,"b":18446744073709551616}',
    b'{"a":1.5e3,"b":-0,"c":1e-7,"d":null,"e":true}',
    b'{"a":"\\ud83d\\ude00"}',  # an escaped pair: one character
    b'{"a":"\\ud800"}',  # a lone half: json reads it, orjson refuses it
    b'\xef\xbb\xbf{"a":1}',  # a BOM
    '{"a": [1, 2, {"b": "x"}]}',
    '{"a": 12345678901234567890123, "b": "\u00e9\ud800"}',  # text: a long number, a lone half
    bytearray(b'{"a":[9999999999999999999,1]}'),  # 19 nines: past 64 bits
    b'{"a":"1234567890123456789","b":123456789012345678}',  # 19 digits in a string; 18 as a number
    b"[" * 300 + b"]" * 300,
    b'{"a":1,"a":2}',
]


@pytest.mark.parametrize("raw", SAME_VALUE)
def test_loads_gives_what_json_gives(raw: Any) -> None:
    value = loads(raw)
    assert value == json.loads(raw)
    assert repr(value) == repr(json.loads(raw))  # int stays int, float stays float


def test_nan_and_infinity_read_as_json_reads_them() -> None:
    value = loads(b'{"a":NaN,"b":Infinity,"c":1e400}')
    assert math.isnan(value["a"]) and value["b"] == math.inf and value["c"] == math.inf


def test_a_fallback_decides_what_orjson_refuses() -> None:
    def strict(raw: Any) -> Any:
        return json.loads(raw, parse_constant=lambda name: (_ for _ in ()).throw(ValueError(name)))

    with pytest.raises(ValueError, match="NaN"):
        loads(b'{"a":NaN}', fallback=strict)
    assert loads(b'{"a":1}', fallback=strict) == {"a": 1}


@pytest.mark.parametrize("raw", [b'{"a":', b"[1,]", b"\xff", b"", b'{"a":"\x01"}'])
def test_errors_are_jsons(raw: bytes) -> None:
    with pytest.raises(Exception) as ours:
        loads(raw)
    with pytest.raises(Exception) as theirs:
        json.loads(raw)
    assert type(ours.value) is type(theirs.value)
    assert str(ours.value) == str(theirs.value)


def test_deep_nesting_stops_where_json_stops() -> None:
    with pytest.raises(RecursionError):
        loads(b"[" * 100_000 + b"]" * 100_000)


@pytest.mark.parametrize(
    "value",
    [
        {"id": "chatcmpl-1", "choices": [{"index": 0, "delta": {"content": "é \u2028 <\x1f"}}]},
        {"a": 2**70, "b": [1, 2.5, None, True]},  # past 64 bits: the json module writes it
        {1: "x"},  # a key that is not a string: as json writes it
        [],
    ],
)
def test_dumps_writes_compact_utf8_json(value: Any) -> None:
    expected = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    assert dumps(value) == expected


def test_dumps_writes_a_lone_surrogate_as_its_escape() -> None:
    """Text that is no UTF-8 (a header's bytes Sanic hands over as surrogates, echoed in an
    error; an upstream's lone \\ud800 escape) is written as JSON's escape, not an error; the
    rest is written as ever (UTF-8 text as UTF-8, a number past 64 bits as its digits)."""
    written = dumps({"a": "\ud800", "b": "é", "c": "\\\udcff", "n": 2**64})
    assert written == '{"a":"\\ud800","b":"é","c":"\\\\\\udcff","n":18446744073709551616}'.encode()
    assert json.loads(written) == {"a": "\ud800", "b": "é", "c": "\\\udcff", "n": 2**64}


def _nested(levels: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(levels):
        value = [value]
    return value


WRITTEN_THE_SAME = [
    {}, [], "", [""], [[]], [{}], 1.5, None, float("nan"), [float("inf"), -0.0],
    {"a": [1, 2.5, None, True, "x"], "b": {"c": [[1], [2, {"d": "\u2028\x00\"\\/"}]]}},
    "word " * 500_000 + "\u00e9\n\U0001f600",  # past PIECE_CHARS: written in slices
    ["\ud800 lone", "x" * 2_100_000 + "\ud800"],  # lone halves: the json module's escapes
    [0.123456789] * 40_000 + [None],  # past PIECE_ITEMS numbers
    [2**70] * 20_000, {"x": 2**70}, {1: "a", "b": [1]}, [1, [2], {"c": 3}],
    _nested(100), {"deep": _nested(40)},
]  # fmt: skip


@pytest.mark.parametrize("value", WRITTEN_THE_SAME, ids=range(len(WRITTEN_THE_SAME)))
def test_dumps_between_turns_writes_what_dumps_writes(value: Any) -> None:
    assert dumps_between_turns(value) == dumps(value)


def test_dumps_between_turns_lets_the_loop_in() -> None:
    """Written on a thread, a 45 MB value held the loop as long as orjson took for it all; a
    piece at a time, the loop gets its turns (half of that at most, the last join within).
    Timed in the process's CPU seconds: on a loaded machine the whole process may wait its turn
    for a core longer than half of orjson's 0.1 s, which is no loop held by the writer."""
    value = {"data": [{"index": i, "embedding": [i / 7 + 0.001 * k for k in range(3072)]}
                      for i in range(700)]}  # fmt: skip

    async def longest_gap(write: Any) -> tuple[float, float]:
        gaps, done = [0.0], asyncio.Event()

        async def tick() -> None:
            last = time.process_time()
            while not done.is_set():
                await asyncio.sleep(0.001)
                gaps.append(time.process_time() - last)
                last = time.process_time()

        ticker = asyncio.create_task(tick())
        await asyncio.sleep(0.01)
        began = time.process_time()
        await asyncio.to_thread(write, value)
        took = time.process_time() - began
        done.set()
        await ticker
        return max(gaps), took

    held, took = asyncio.run(longest_gap(dumps))
    assert held > took * 0.8  # orjson holds the loop throughout
    gap, _ = asyncio.run(longest_gap(dumps_between_turns))
    assert gap < took / 2, f"the loop waited {gap:.3f} s (orjson: {took:.3f} s)"


@pytest.mark.parametrize("opener", [b'{"a":', b'{"a":[', b"["])
def test_deep_objects_stop_where_json_stops(opener: bytes) -> None:
    closer = {b'{"a":': b"}", b'{"a":[': b"]}", b"[": b"]"}[opener]
    raw = opener * 1010 + b"1" + closer * 1010  # deeper than json goes, not orjson (1024)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    try:
        with pytest.raises(RecursionError):
            loads(raw)
    finally:
        sys.setrecursionlimit(limit)
