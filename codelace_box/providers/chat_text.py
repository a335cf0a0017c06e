"""The text of a Chat Completions message or stream delta: its answer and its reasoning, in
any of the shapes the compatible servers send (a `content` string or a list of typed chunks,
`reasoning_content` or `reasoning`)."""

from __future__ import annotations

from typing import Any

from codelace_box.providers.base import JSON


def reasoning_text(message: JSON) -> str:
    """The reasoning a chat message or delta carries (`reasoning_content`, or `reasoning`, or
    the thinking chunks of a content list)."""
    return reasoning_field(message) or "".join(_chunk_texts(message.get("content"), "thinking"))


def reasoning_field(message: JSON) -> str:
    """The reasoning of a message's `reasoning_content` or `reasoning` field ("" if none)."""
    for name in ("reasoning_content", "reasoning"):
        value = message.get(name)
        if isinstance(value, str) and value:
            return value
    return ""


def content_text(message: JSON) -> str:
    """The answer text of a chat message or delta: its `content` string, or the text chunks of
    a content list. Mistral's reasoning models (Magistral) answer with a list of typed chunks,
    `{"type": "thinking", "thinking": [{"type": "text", "text": ...}]}` and
    `{"type": "text", "text": ...}`, in stream deltas too."""
    content = message.get("content")
    return content if isinstance(content, str) else "".join(_chunk_texts(content, "text"))


def _chunk_texts(content: Any, kind: str) -> list[str]:
    """The texts of a content list's chunks of one type (a thinking chunk holds text chunks)."""
    texts: list[str] = []
    for chunk in content if isinstance(content, list) else ():
        if not isinstance(chunk, dict) or chunk.get("type") != kind:
            continue
        inner = chunk.get(kind)
        if isinstance(inner, str):
            texts.append(inner)
        elif isinstance(inner, list):
            texts += _chunk_texts(inner, "text")
    return texts
