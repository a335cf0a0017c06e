"""Text as a terminal shows it and as argv hands it over: the columns a string takes (wide
scripts and emoji two, combining marks none), and arguments that are no UTF-8."""

from __future__ import annotations

import os
import sys
import unicodedata

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
