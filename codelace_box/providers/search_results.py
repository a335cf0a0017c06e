"""Anthropic's `search_result` blocks as text, for a model that takes no such block (pure code).

A search result, `{"type": "search_result", "source", "title", "content": [text blocks],
"citations"}`, is what a retrieval tool hands the model to cite: Claude Code 2.1.332 answers a
citable WebFetch so (the page in pieces of at most 500 characters), in a tool_result, and
Anthropic takes one in a user turn too. An `openai` model reads it as its title, its source
(once, when the title is the source) and its text, the pieces joined as written: one that ends
in whitespace runs on into the next, another ends its line.
"""

from __future__ import annotations

from typing import Any

SEARCH_RESULT = "search_result"


def _joined(pieces: list[str]) -> str:
    text = ""
    for piece in pieces:
        if text and not text[-1].isspace():
            text += "\n"
        text += piece
    return text


def search_result_text(block: dict[str, Any]) -> str:
    """The text a model reads for one search result."""
    content = block.get("content")
    pieces = [
        b["text"]
        for b in (content if isinstance(content, list) else ())
        if isinstance(b, dict) and isinstance(b.get("text"), str)
    ]
    head = [name for name in (block.get("title"), block.get("source")) if isinstance(name, str)]
    head = list(dict.fromkeys(name for name in head if name))  # the source once, if the title
    text = _joined(pieces)
    return "\n".join(head) + "\n\n" + text if head else text


def block_text(block: Any) -> str | None:
    """The text of a text block or of a search result; None for any other block."""
    if not isinstance(block, dict):
        return None
    if block.get("type") == SEARCH_RESULT:
        return search_result_text(block)
    text = block.get("text")
    return text if isinstance(text, str) else None
