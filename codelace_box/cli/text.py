"""Text as a terminal shows it and as argv hands it over: the columns a string takes (wide
scripts and emoji two, combining marks none), arguments that are no UTF-8, and free text
(a reason, a key's name) the service's own check refuses as a usage error."""

from __future__ import annotations

import os
import sys
import unicodedata
from collections.abc import Callable
from typing import Any

import click

from codelace_box.errors import InvalidRequest

_ZERO_WIDTH = frozenset({"Mn", "Me", "Cf"})  # combining marks, format characters (ZWJ)
_WIDE = frozenset({"W", "F"})  # East Asian wide and full-width: CJK, most emoji


def display_width(text: str) -> int:
    """The columns a terminal gives `text` (what len() is for ASCII)."""
    if text.isascii():
        return len(text)
    return sum(_char_width(char) for char in text)


def _char_width(char: str) -> int:
    if unicodedata.category(char) in _ZERO_WIDTH:
        return 0
    return 2 if unicodedata.east_asian_width(char) in _WIDE else 1


def pad(text: str, width: int) -> str:
    """`text` followed by spaces up to `width` columns (str.ljust counts characters)."""
    return text + " " * max(0, width - display_width(text))


def not_utf8(exc: BaseException) -> str | None:
    """The message for an argument that is no UTF-8 (Python's argv holds its bytes as lone
    surrogates, which neither database takes), or None when `exc` is not about one."""
    if not (isinstance(exc, UnicodeEncodeError) and "surrogates" in exc.reason):
        return None
    words = [word for word in sys.argv[1:] if _has_surrogate(word)] or [str(exc.object)]
    shown = ", ".join(_as_bytes(word) for word in words[:3])
    return (
        f"{shown} is not UTF-8 text, which codelace-box needs here (names, ids, reasons, "
        "and paths it keeps or opens): is the terminal's encoding UTF-8?"
    )


def _has_surrogate(word: str) -> bool:
    return any("\udc80" <= char <= "\udcff" for char in word)


def _as_bytes(word: str) -> str:
    """The word as the bytes it was typed with, escaped where they are no ASCII: 'caf\\xe9'."""
    raw = os.fsencode(word) if _has_surrogate(word) else word.encode("utf-8", "backslashreplace")
    return "'" + raw.decode("ascii", "backslashreplace")[:200] + "'"


class CheckedText(click.ParamType):
    """Free text the service checks (`check`, imported only when the option is given: a
    reason, a key's name), refused before anything runs as a usage error (exit 2, as a bad
    amount is) in the service's words, less its field's name (`field`) the option names."""

    name = "text"

    def __init__(self, check: Callable[[str], object], field: str) -> None:
        self.check = check
        self.field = field

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str):
            try:
                self.check(value)
            except InvalidRequest as exc:
                self.fail(exc.message.removeprefix(f"{self.field} "), param, ctx)
        return value
