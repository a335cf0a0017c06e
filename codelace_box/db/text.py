"""Text from outside made storable in a text column of either engine, and ids compared in one
Unicode form."""

from __future__ import annotations

import unicodedata


def storable_text(text: str) -> str:
    """`text` with what no text column takes written as its escape: a NUL (which PostgreSQL
    refuses in any text) as `\\x00`, as the log writes it, and half a UTF-16 surrogate pair
    (an upstream's JSON escape `\\ud800`, which json reads as such, and UTF-8, so neither
    engine, cannot encode) as `\\ud800`. Anything else unchanged."""
    kept = text.replace("\x00", "\\x00")
    if kept.isascii():
        return kept
    return kept.encode("utf-8", "backslashreplace").decode("utf-8")


def composed(text: str) -> str:
    """`text` in Unicode's composed form (NFC: è, not e + U+0300), as a keyboard and JSON give
    it; a macOS terminal or a pasted name may give the other, which looks the same. ASCII as
    it is."""
    return text if text.isascii() else unicodedata.normalize("NFC", text)
