"""Text from outside (an upstream's words) made storable in a text column of either engine."""

from __future__ import annotations


def storable_text(text: str) -> str:
    """`text` with what no text column takes written as its escape: a NUL (which PostgreSQL
    refuses in any text) as `\\x00`, as the log writes it, and half a UTF-16 surrogate pair
    (an upstream's JSON escape `\\ud800`, which json reads as such, and UTF-8, so neither
    engine, cannot encode) as `\\ud800`. Anything else unchanged."""
    kept = text.replace("\x00", "\\x00")
    if kept.isascii():
        return kept
    return kept.encode("utf-8", "backslashreplace").decode("utf-8")
