"""JSON on the request path: orjson's speed with the standard library's results.

`dumps` writes compact UTF-8 (what `json.dumps(separators=(",", ":"), ensure_ascii=False)`
writes, as bytes); a value orjson refuses (an integer past 64 bits, a key that is not a string)
is written by the json module, as before, and so is text that is no UTF-8 (a lone surrogate:
how Sanic hands over a header's bytes that are no UTF-8, which an error message may echo), each
lone surrogate as its `\\uXXXX` escape and the rest as UTF-8. One difference: a float NaN or
infinity (only an upstream's JSON can hold one) is written `null`, valid JSON, where json wrote
`NaN`.
`loads` gives what `json.loads` gives, value or error: text with a run of 19 digits (a number
orjson would read as a float), text with 255 or more brackets (which could nest deeper than
json reads) and anything orjson refuses (NaN, a lone surrogate escape, a
BOM, UTF-16) are read by the json module (or `fallback`). About 10x faster on small objects,
which are most of what a request decodes and encodes (each stream chunk, both ways).
`loads_between_turns` gives the same for a large text on a thread, letting the event loop in
while it parses (orjson and json's parser hold the interpreter lock throughout otherwise: a
47 MiB embeddings answer parsed on a thread held the loop 2 s).
`dumps_between_turns` writes what `dumps` writes, for a large value on a thread, a piece at a time
(orjson holds the lock through one call: a 45 MB embeddings answer held the loop 0.1 s).
`nests_deeper_than_written` says whether a value nests past MOST_LEVELS, the deepest orjson
writes (a request body that deep is refused: api/common.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson

_std_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
# A run of 19 digits, found as 19 zeros once every digit is a zero (bytes.translate and a
# substring search: about 1 µs a kilobyte, where a regular expression took 15).
# The same pass makes every "{" a "[": the brackets are then counted in one more pass, not two.
_DIGITS_AS_ZEROS = bytes.maketrans(b"123456789{", b"000000000[")
_LONG_NUMBER = b"0" * 19
# What `loads` (and json.loads) raise for a text that is no JSON: RecursionError for one nested
# deeper than json reads, ValueError for the rest (a UnicodeDecodeError, a binascii.Error too)
NOT_JSON = (ValueError, RecursionError)
# Fewer brackets than this cannot nest as deep as json's recursion limit, where it stops.
MAX_OPENERS = 255
# The deepest nesting orjson writes (arrays and objects; it refuses one level more)
MOST_LEVELS = 254
# A text with fewer objects than one per this many bytes (a long array of numbers) is parsed
# with a call back per float too, so that the loop is let in often enough.
SPARSE_OBJECT_BYTES = 64 * 1024
# dumps_between_turns' pieces: how many numbers of an array, characters of a string (each
# about a millisecond's writing at most), and how deep it writes member by member
PIECE_ITEMS = 16 * 1024
PIECE_CHARS = 1024 * 1024
PIECES_DEPTH = 32


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON bytes."""
    try:
        return orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError is one
        text = _std_dumps(value)
    # A lone surrogate (a header's bytes that are no UTF-8, echoed) can only stand inside a
    # JSON string, where Python's \uXXXX for it is JSON's escape too; the rest stays UTF-8.
    return text.encode("utf-8", "backslashreplace")


def loads(raw: bytes | bytearray | str, fallback: Callable[[Any], Any] = json.loads) -> Any:
    """The JSON value of `raw`, as `fallback` (json.loads) reads it."""
    if _plain(raw):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    return fallback(raw)


def let_others_in(value: Any) -> Any:
    """The value as it is: a call the interpreter runs as Python, between which it may hand its
    lock to another thread (the event loop's)."""
    return value


def _float(text: str) -> float:
    return float(text)  # (Python code, as `_let_others_in`)


def loads_between_turns(raw: bytes | bytearray) -> Any:
    """What `loads` gives (json.loads' value or error), for a large text parsed on a thread
    while the event loop runs: json's parser calls back into Python at the end of each object
    (and for each float, where objects are sparse), and there the loop gets its turns; orjson,
    or json's parser alone, hold the interpreter lock from start to end."""
    sparse = raw.count(b"{") * SPARSE_OBJECT_BYTES < len(raw)
    return json.loads(raw, object_hook=let_others_in, parse_float=_float if sparse else None)


def dumps_between_turns(value: Any) -> bytes:
    """What `dumps` writes, for a large value written on a thread while the event loop runs:
    written a piece at a time (objects member by member, arrays of arrays, objects or strings
    element by element, other arrays PIECE_ITEMS elements and strings PIECE_CHARS characters
    at a time), each piece one `dumps` call, between which the loop gets its turns."""
    parts: list[bytes | memoryview] = []
    _write(value, parts, 0)
    return b"".join(parts)


def _write(value: Any, parts: list[bytes | memoryview], depth: int) -> None:
    """Append the pieces of value's JSON to parts (a value past PIECES_DEPTH levels whole)."""
    if depth >= PIECES_DEPTH:
        parts.append(dumps(value))
    elif isinstance(value, dict) and all(isinstance(key, str) for key in value):
        parts.append(b"{")
        for n, (key, item) in enumerate(value.items()):
            parts.append(b"," + dumps(key) + b":" if n else dumps(key) + b":")
            _write(item, parts, depth + 1)
        parts.append(b"}")
    elif isinstance(value, list) and value and isinstance(value[0], dict | list | str):
        for n, item in enumerate(value):
            parts.append(b"," if n else b"[")
            _write(item, parts, depth + 1)
        parts.append(b"]")
    elif isinstance(value, list) and len(value) > PIECE_ITEMS:  # numbers (an embedding)
        _pieces(value, PIECE_ITEMS, b"[", b",", parts)
        parts.append(b"]")
    elif isinstance(value, str) and len(value) > PIECE_CHARS:
        _pieces(value, PIECE_CHARS, b'"', b"", parts)
        parts.append(b'"')
    else:
        parts.append(dumps(value))


def _pieces(value: Any, size: int, opener: bytes, between: bytes, parts: list[Any]) -> None:
    """A long array's or string's JSON without its closer: slices of `size`, each written
    without its own opener and closer."""
    parts.append(opener)
    for start in range(0, len(value), size):
        if start and between:
            parts.append(between)
        parts.append(memoryview(dumps(value[start : start + size]))[1:-1])


def _plain(raw: bytes | bytearray | str) -> bool:
    """No number orjson would read otherwise, and too few brackets to nest too deeply."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    zeroed = data.translate(_DIGITS_AS_ZEROS)
    if zeroed.find(_LONG_NUMBER) >= 0:  # (`in` tries an int first)
        return False
    # (a text shorter than MAX_OPENERS has fewer brackets: a stream chunk, not counted)
    return len(data) < MAX_OPENERS or zeroed.count(b"[") < MAX_OPENERS


def nests_deeper_than_written(value: Any) -> bool:
    """Whether value nests past MOST_LEVELS, which `dumps` could write only by the json module
    (and only a few hundred levels more): orjson refuses to write it (in C, 90 us for a 450 KB
    body where a walk in Python takes 900); a value it refuses for another reason (an integer
    past 64 bits) is walked."""
    try:
        orjson.dumps(value)
    except orjson.JSONEncodeError as exc:
        return "Recursion" in str(exc) or _depth(value) > MOST_LEVELS
    return False


def _depth(value: Any) -> int:
    """How many arrays and objects deep value nests."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in _children(item))
    return deepest


def _children(item: dict[Any, Any] | list[Any]) -> Any:
    return item.values() if isinstance(item, dict) else item


def is_whole_json(text: str) -> bool:
    """Whether text is one complete JSON value (a streamed tool call's arguments so far)."""
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def has_string(value: Any, test: Callable[[str], bool]) -> bool:
    """Whether a parsed JSON value has a string (a key or a value, at any depth) that passes
    `test` (a NUL PostgreSQL cannot store, a lone surrogate UTF-8 cannot encode)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if test(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False
