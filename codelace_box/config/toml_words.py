"""The TOML parser's refusal of a config file in plain words: where (line and column, or its
end), what was wrong and what to write instead, the key set twice named (never a value), and
the parser's own words kept after them. tomllib's message and the file's lines around the
place it names are read; for a key set twice, the lines its statement may start on are tried
with tomllib alone (only then, so that a value over several lines is never read as a key)."""

from __future__ import annotations

import ast
import re
import tomllib

_WHERE = re.compile(
    r"^(?P<msg>.*) \(at (?:line (?P<line>\d+), column (?P<col>\d+)|end of document)\)$"
)
_DECLARED_TWICE = re.compile(r"^Cannot declare (?P<parts>\(.*\)) twice$")
_NAMESPACE = re.compile(r"^Cannot (?P<how>mutate immutable|redefine) namespace (?P<parts>\(.*\))$")
_BAD_CHARACTER = re.compile(r"^(?:Found invalid|Illegal) character (?P<char>'.{1,12}')$")
_HEADER = re.compile(r"^\s*\[\[?\s*(?P<name>[A-Za-z0-9_.\- ]+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(r"^\s*(?P<key>[A-Za-z0-9_.\-\"' ]+?)\s*=")  # bare, dotted or quoted
_STATEMENT_LINES = 200  # how far above its end a key = value set twice is looked for
_NOT_A_VALUE = (
    'not a value (text needs quotes, as "127.0.0.1"; true and false in lower case; numbers as '
    "digits)"
)
_UNCLOSED_TEXT = "a text value not closed (its closing quote missing?)"
# tomllib's message: the plain words for it
_PLAIN = {
    "Cannot overwrite a value": "",  # the key's words: _set_twice
    "Unterminated string": _UNCLOSED_TEXT,
    'Expected "\'"': _UNCLOSED_TEXT,
    "Expected '\"'": _UNCLOSED_TEXT,
    "Expected '=' after a key in a key/value pair": (
        "a key without = and a value (write key = value; a key with a space needs quotes)"
    ),
    "Invalid value": _NOT_A_VALUE,
    "Expected newline or end of document after a statement": (
        "more on the line after its value (one key = value a line; text needs quotes around "
        "all of it)"
    ),
    "Expected ']' at the end of a table declaration": "a [section] without its closing ]",
    "Expected ']]' at the end of an array declaration": "a [[section]] without its closing ]]",
    "Unclosed array": "a list [...] not closed with ]",
    "Unclosed inline table": "an inline table {...} not closed with }",
    "Unescaped '\\' in a string": (
        "a backslash in a \"...\" text (write \\\\ for one, or put the text in '...')"
    ),
    "Invalid statement": "a line that is neither key = value nor a [section]",
    "Invalid initial character for a key part": "a key expected here",
}


def toml_refusal(error: str, text: str) -> str:
    """What follows "PATH: not valid TOML" for tomllib's `error` about the file's `text`."""
    where = _WHERE.match(error)
    if where is None:  # a message of another shape: as tomllib says it
        return f": {error}"
    message, line = where["msg"], where["line"]
    at = f"at line {line}, column {where['col']}" if line else "at its end"
    plain = _plain(message, text, int(line) if line else 0)
    return f" {at}: {plain} (TOML parser: {message})" if plain else f" {at}: {message}"


def _plain(message: str, text: str, line: int) -> str:
    """The plain words for tomllib's `message` at `line` (1-based; 0: the end), '' for none."""
    if message == "Cannot overwrite a value":
        lines = [part.removesuffix("\r") for part in text.split("\n")[:line]]
        return _set_twice(lines)  # TOML's lines (CRLF or LF): U+2028 or NEL are none
    if message.startswith("Duplicate inline table key "):
        return "a key is set twice inside one {...}"
    if twice := _DECLARED_TWICE.match(message):
        return _declared_twice(_dotted(twice["parts"]))
    if namespace := _NAMESPACE.match(message):
        return _namespace_words(namespace["how"], _dotted(namespace["parts"]))
    if character := _BAD_CHARACTER.match(message):
        return _character_words(character["char"])
    return _PLAIN.get(message, "")


def _declared_twice(name: str) -> str:
    """A [section] declared twice ('' when the name cannot be read)."""
    if not name:
        return ""
    return (
        f"[{name}] is declared twice (a [{name}], or keys under {name}, came before: put "
        f"them all under one [{name}])"
    )


def _namespace_words(how: str, name: str) -> str:
    """A dotted key reaching into a table given whole ({...}, [...]) or one with its own
    [section] ('' when the name cannot be read)."""
    if not name:
        return ""
    if how == "redefine":
        return f"{name} has its own [{name}] section: put its keys there"
    return f"{name} was given whole above, as {{...}} or [...]: write all of it there"


def _character_words(quoted: str) -> str:
    """A character TOML refuses where it stands: a line's end inside a text (its closing
    quote missing), or a control character (one character; no more of the value is said)."""
    try:
        char = ast.literal_eval(quoted)
    except (ValueError, SyntaxError):
        return ""
    if not isinstance(char, str) or len(char) != 1:
        return ""
    if char in "\r\n":
        return "a text value not closed on its line (its closing quote missing?)"
    return (
        "a control character TOML does not take (in text, write it as an escape such as "
        f"\\u{ord(char):04x})"
    )


def _dotted(parts: str) -> str:
    """('server', 'port') as server.port ('' when it is not such a tuple of names)."""
    try:
        names = ast.literal_eval(parts)
    except (ValueError, SyntaxError):
        return ""
    ok = isinstance(names, tuple) and all(isinstance(name, str) for name in names)
    return ".".join(names) if ok and names else ""


def _set_twice(lines: list[str]) -> str:
    """A key set again: named from its line (the words before its =, or a [header]) and the
    [section] above it; never its value."""
    if not lines:
        return "a key is set twice (a key is set once in its section)"
    last = lines[-1]
    if header := _HEADER.match(last):
        name = header["name"]
        return f"[{name}] names {name}, set above: one of the two must go"
    key = _statement_key(lines)
    section = next((h["name"] for h in map(_HEADER.match, reversed(lines[:-1])) if h), "")
    if key is None:
        return "a key is set twice (a key is set once in its section)"
    bare = re.sub("[\"' ]", "", key)
    name = f"{section}.{bare}" if section else bare
    return f"{name} is set twice (a key is set once in its section)"


def _statement_key(lines: list[str]) -> str | None:
    """The key (its text before =) of the key = value ending on the last of `lines`: the
    nearest line above from which the lines to the end are one whole TOML statement, so that
    a multi-line value's last line (base64 ending in '=') is never taken for a key."""
    for start in range(len(lines) - 1, max(-1, len(lines) - 1 - _STATEMENT_LINES), -1):
        try:
            tomllib.loads("\n".join(lines[start:]))
        except ValueError:  # TOMLDecodeError, or int() past 4300 digits
            continue
        key = _KEY.match(lines[start])
        return key["key"] if key else None
    return None
