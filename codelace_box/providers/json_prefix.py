"""Whether a streamed tool call's arguments so far can still begin one JSON object.

Anthropic's `input_json_delta` pieces always join into a JSON object, and the anthropic SDK
parses them as they come (partial JSON): one piece that no object can begin with ends the
client's whole stream. `ObjectPrefix` is fed the pieces of an `openai` provider's arguments in
order and answers, per piece, whether everything so far is the beginning of one JSON object
(strict JSON: no raw control characters in strings, no leading zeros). Pure and incremental.
"""

from __future__ import annotations

_SPACE = " \t\n\r"
_HEX = frozenset("0123456789abcdefABCDEF")
_ESCAPED = frozenset('"\\/bfnrt')
_LITERALS = {"t": "rue", "f": "alse", "n": "ull"}
# number states -> {class of the next character: next state}; an absent class ends the number
_NUMBER = {
    "minus": {"0": "zero", "1": "int"},
    "zero": {".": "dot", "e": "e"},
    "int": {"0": "int", "1": "int", ".": "dot", "e": "e"},
    "dot": {"0": "frac", "1": "frac"},
    "frac": {"0": "frac", "1": "frac", "e": "e"},
    "e": {"+": "sign", "0": "exp", "1": "exp"},
    "sign": {"0": "exp", "1": "exp"},
    "exp": {"0": "exp", "1": "exp"},
}
_NUMBER_ENDS = frozenset({"zero", "int", "frac", "exp"})


def _number_class(ch: str) -> str:
    if ch == "0":
        return "0"
    if "1" <= ch <= "9":
        return "1"
    return {"E": "e", "-": "+"}.get(ch, ch)


class ObjectPrefix:
    """Feed it text in order; `feed` says whether all of it so far can begin a JSON object
    (once false, always false)."""

    def __init__(self) -> None:
        self.valid = True
        self.stack: list[str] = []  # the open containers, "{" or "["
        self.expect = "start"  # start, key, key_or_end, colon, value, value_or_end, next, done
        self.string: str | None = None  # inside a string: "key" or "value"
        self.escape = False  # after a backslash in a string
        self.hex = 0  # hex digits of a \u escape still wanted
        self.number: str | None = None  # a state of _NUMBER while in a number
        self.literal = ""  # the rest of true, false or null

    def feed(self, text: str) -> bool:
        if self.valid:
            self.valid = all(self._char(ch) for ch in text)
        return self.valid

    def _char(self, ch: str) -> bool:
        if self.string is not None:
            return self._in_string(ch)
        if self.literal:
            if ch != self.literal[0]:
                return False
            self.literal = self.literal[1:]
            if not self.literal:
                self._value_done()
            return True
        if self.number is not None:
            following = _NUMBER[self.number].get(_number_class(ch))
            if following is not None:
                self.number = following
                return True
            if self.number not in _NUMBER_ENDS:
                return False
            self.number = None
            self._value_done()
        return ch in _SPACE or self._structural(ch)

    def _structural(self, ch: str) -> bool:
        expect = self.expect
        if expect == "start":
            return ch == "{" and self._open(ch)
        if expect in ("key", "key_or_end", "colon"):
            return self._in_member(ch, expect)
        if expect == "next":
            return self._after_value(ch)
        if expect == "value_or_end" and ch == "]":
            return self._close(ch)
        return expect in ("value", "value_or_end") and self._value(ch)

    def _in_member(self, ch: str, expect: str) -> bool:
        """An object's key (or its end, right after `{`), then the colon."""
        if expect == "colon":
            self.expect = "value"
            return ch == ":"
        if ch == '"':
            self.string = "key"
            return True
        return ch == "}" and expect == "key_or_end" and self._close(ch)

    def _after_value(self, ch: str) -> bool:
        if ch == ",":
            self.expect = "key" if self.stack[-1] == "{" else "value"
            return True
        return ch in "}]" and self._close(ch)

    def _value(self, ch: str) -> bool:
        if ch == '"':
            self.string = "value"
        elif ch in "{[":
            self._open(ch)
        elif ch == "-" or "0" <= ch <= "9":
            self.number = {"-": "minus", "0": "zero"}.get(ch, "int")
        elif ch in _LITERALS:
            self.literal = _LITERALS[ch]
        else:
            return False
        return True

    def _in_string(self, ch: str) -> bool:
        if self.hex:
            self.hex -= 1
            return ch in _HEX
        if self.escape:
            self.escape = False
            self.hex = 4 if ch == "u" else 0
            return ch == "u" or ch in _ESCAPED
        if ch == "\\":
            self.escape = True
        elif ch == '"':
            was_key, self.string = self.string == "key", None
            if was_key:
                self.expect = "colon"
            else:
                self._value_done()
        return ch >= " "

    def _open(self, ch: str) -> bool:
        self.stack.append(ch)
        self.expect = "key_or_end" if ch == "{" else "value_or_end"
        return True

    def _close(self, ch: str) -> bool:
        if not self.stack or self.stack[-1] != ("{" if ch == "}" else "["):
            return False
        self.stack.pop()
        self._value_done()
        return True

    def _value_done(self) -> None:
        self.expect = "next" if self.stack else "done"
