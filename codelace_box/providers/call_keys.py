"""Which tool call a streamed chat piece belongs to, and the pieces in OpenAI's own shape.

OpenAI streams a call as pieces of one `index` (one per call of a choice, counted from 0 in
the order calls begin), its id, type and name on the first piece only. OpenAI-compatible
servers do otherwise: the id, type and name on every piece; no `index` at all (Gemini's
OpenAI-compatible endpoint); every parallel call at index 0, each with its own id; a new id
on every piece of one call (mlx-openai-server; Poolside's API after the first piece).
`CallKeys` tells the calls apart for every route that reads such a stream (the Messages
translation, and the chat relay through `CanonicalCalls`, which rewrites the pieces for the
clients that gather them by index, as the openai SDK's stream helper does). Pure: no I/O.
"""

from __future__ import annotations

import json
from typing import Any

from codelace_box.jsonwire import NOT_JSON, is_whole_json, loads

JSON = dict[str, Any]
_HEADER = ("id", "type")


def arguments_of(function: Any) -> str:
    """A tool call's arguments as the JSON text OpenAI gives ("" when there are none).
    llama.cpp's server gives them as a JSON object (its builds of March 2026, and
    `--tool-args-object`): written out as the text they stand for."""
    value = function.get("arguments") if isinstance(function, dict) else None
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else ""


def same_call(name: Any, open_name: Any, arguments: str) -> bool:
    """Whether a tool call piece with a new id and a name goes on with the open call (named
    `open_name`, its arguments so far `arguments`): it does when it names the same function
    and those arguments are not whole JSON yet (servers that draw a new id for every piece
    and repeat the name); once they are whole, a new call begins (servers that number every
    parallel call 0 or give no index)."""
    return name == open_name and not is_whole_json(arguments)


def _function(piece: JSON) -> JSON:
    value = piece.get("function")
    return value if isinstance(value, dict) else {}


class CallKeys:
    """The calls of one choice's stream: `key_of` gives the key of the call a piece belongs
    to (the same for all of a call's pieces, another for each call)."""

    def __init__(self) -> None:
        self.ids: dict[Any, str] = {}  # call key -> the call's first id
        self.by_id: dict[str, Any] = {}  # a call's first id -> its key
        self.names: dict[Any, str] = {}  # call key -> the call's name
        self.arguments: dict[Any, str] = {}  # call key -> its arguments so far
        self.last: Any = None  # the key of the call a piece without index continues
        self.index_keys: dict[int, Any] = {}  # an upstream index -> the key of its latest call
        self.resent = False  # the last piece was its call sent again whole (`_resent`): drop it

    def key_of(self, piece: JSON) -> Any:
        """The key of a piece's call: its `index`, but a new id with a name is a new call
        whatever its index says, and a piece without index continues the last call. A new id
        without a name continues the call (a call begins with its name); so does one with the
        same name while the call's arguments are not whole JSON yet (`same_call`). A piece
        without index that gives a call's first id goes to that call (calls interleaved). A
        piece naming a function and bringing arguments after the call's whole arguments begins
        a new call too, though its id is not new (servers and relays that send each parallel
        call whole, under the same id or none at all); but not when it gives the call's own id,
        name and arguments again (`resent`: the call sent again whole, to be dropped)."""
        self.resent = False
        given = piece.get("id")
        call_id = given if isinstance(given, str) and given else None
        index = piece.get("index")
        if isinstance(index, int):
            key = self.index_keys.get(index, index)
        else:
            key = self.by_id.get(call_id, self.last) if call_id is not None else self.last
        function = _function(piece)
        name = function.get("name")
        renamed = key in self.ids and self.ids[key] != call_id
        if call_id is not None and renamed and name and not self._goes_on(key, name):
            key = ("call", call_id)
        if key is None:
            key = ("call", call_id) if call_id is not None else 0
        elif name and self._anew(key, arguments_of(function)):
            self.resent = self._resent(key, call_id, name, arguments_of(function))
            if self.resent:
                return key
            key = ("next", len(self.arguments))  # a key no call has yet
            if call_id is not None:
                self.by_id[call_id] = key  # its later pieces that give the id come here
        if call_id is not None and self.ids.setdefault(key, call_id) == call_id:
            self.by_id.setdefault(call_id, key)
        if name:
            self.names.setdefault(key, name)
        if isinstance(index, int):
            self.index_keys[index] = key
        self.last = key
        self.arguments[key] = self.arguments.get(key, "") + arguments_of(function)
        return key

    def _anew(self, key: Any, fragment: str) -> bool:
        """Whether arguments `fragment` begin a new object after the call `key` (begun, with a
        name) has whole arguments. Cheap tests first: servers that repeat the name on every
        piece of a call would otherwise parse its arguments so far at each piece."""
        if not fragment.lstrip().startswith("{") or key not in self.names:
            return False
        so_far = self.arguments.get(key, "")
        return so_far.rstrip().endswith("}") and is_whole_json(so_far)

    def _resent(self, key: Any, call_id: str | None, name: Any, fragment: str) -> bool:
        """Whether a piece giving the call `key`'s own id and name and whole arguments equal
        to its arguments so far is that call sent again (gateways and GLM-style servers that
        end a streamed call with a piece holding all of it): not a second call, which a client
        would run a second time (an id given: calls told apart by nothing else stay two)."""
        if call_id is None or self.ids.get(key) != call_id or self.names.get(key) != name:
            return False
        try:
            return bool(loads(fragment) == loads(self.arguments.get(key, "")))
        except NOT_JSON:
            return False

    def _goes_on(self, key: Any, name: Any) -> bool:
        return same_call(name, self.names.get(key), self.arguments.get(key, ""))


class CanonicalCalls:
    """A chat stream's tool call pieces in OpenAI's shape, per choice: an integer `index` for
    each call, counted from 0 in the order calls begin; the id, type ("function" if the
    server gave none) and name once, on a call's first piece (or the first that has them: a
    client that gathers pieces by index joins every string it gets twice); the arguments and
    any other field as sent."""

    def __init__(self) -> None:
        self.choices: dict[Any, tuple[CallKeys, dict[Any, int], dict[Any, set[str]]]] = {}

    def rewrite(self, choice: Any, pieces: list[Any]) -> list[Any]:
        """The pieces of one delta of choice `choice`, in OpenAI's shape."""
        keys, numbers, sent = self.choices.setdefault(choice, (CallKeys(), {}, {}))
        out: list[Any] = []
        for piece in pieces:
            if not isinstance(piece, dict):
                out.append(piece)
                continue
            key = keys.key_of(piece)
            if keys.resent:  # the call sent again whole: a client would run it twice; its
                if piece.get("extra_content") is not None:  # thought signature is kept (the
                    out.append(_signature(numbers[key], piece["extra_content"]))  # rest not)
                continue
            number = numbers.get(key)
            if number is None:
                number = numbers[key] = len(numbers)
                sent[key] = set()
                out.append(_once(_first(piece, number), number, sent[key]))
            else:
                out.append(_once(piece, number, sent[key]))
        return out


def _signature(number: int, extra_content: Any) -> JSON:
    """A piece of call `number` bringing only its thought signature (Gemini's `extra_content`):
    no arguments (an empty string, as the openai SDK's stream helper wants a `function`)."""
    return {"index": number, "function": {"arguments": ""}, "extra_content": extra_content}


def _first(piece: JSON, number: int) -> JSON:
    """A call's first piece with a type (the openai SDK knows calls of type "function")."""
    if piece.get("type") is not None:
        return piece
    return {**piece, "index": number, "type": "function"}


def _once(piece: JSON, number: int, sent: set[str]) -> JSON:
    """A piece with the call's index, without the header fields already `sent` (to which
    those it sends are added)."""
    function = piece.get("function")
    fields = {k: piece[k] for k in _HEADER if k in piece}
    if isinstance(function, dict) and "name" in function:
        fields["name"] = function["name"]
    drop = sent.intersection(fields)  # (a null too: the SDK takes a type of null as given)
    sent.update(k for k, v in fields.items() if v)
    if piece.get("index") == number and not drop:
        return piece  # (OpenAI's own: as it came)
    kept = {k: v for k, v in piece.items() if k not in drop}
    kept["index"] = number
    if "name" in drop and isinstance(function, dict):
        kept["function"] = {k: v for k, v in function.items() if k != "name"}
    return kept
