"""The turns of a Messages conversation as Chat Completions messages: the system prompt's text
(without Claude Code's attribution block), user blocks as content parts (images as data or http
URLs, PDF documents as file parts, search results as text), `tool_result` blocks as `tool`
messages (their images and documents after, in a user message), assistant text and `tool_use`
blocks as `tool_calls`, with the upstream's own reasoning (`reasoning_content`) and OpenRouter's
sealed `reasoning_details` handed back (messages_openai.py builds the whole body)."""

from __future__ import annotations

import json
from typing import Any

from codelace_box.errors import InvalidRequest
from codelace_box.providers.base import JSON
from codelace_box.providers.reasoning_details import is_sealed, sealed_reasoning, unseal
from codelace_box.providers.search_results import SEARCH_RESULT, block_text, search_result_text
from codelace_box.providers.thought_signature import split_id, with_signature


def _bad(message: str) -> InvalidRequest:
    return InvalidRequest(message, code="invalid_request")


def text_of(content: Any) -> str:
    """The text of a string or of the text blocks of a list."""
    if isinstance(content, str):
        return content
    parts = content if isinstance(content, list) else []
    return "\n".join(text for text in map(block_text, parts) if text is not None)


# Claude Code's attribution block, first in `system`: hashed per session, in some versions per
# request (`cch=`); nothing for the model, and first in the prompt, a prefix no cache reuses
ATTRIBUTION = "x-anthropic-billing-header:"


def system_text(system: Any) -> str:
    """The system prompt's text, without Claude Code's attribution block."""
    if isinstance(system, list):
        system = [b for b in system if not str(block_text(b) or "").startswith(ATTRIBUTION)]
    return text_of(system)


def _source(block: JSON) -> JSON:
    source = block.get("source")
    return source if isinstance(source, dict) else {}


def _image_part(block: JSON) -> JSON:
    source = _source(block)
    if source.get("type") == "url":
        return {"type": "image_url", "image_url": {"url": source.get("url", "")}}
    if source.get("type") == "base64":
        url = f"data:{source.get('media_type', 'image/png')};base64,{source.get('data', '')}"
        return {"type": "image_url", "image_url": {"url": url}}
    raise _bad("image blocks need a base64 or url source for this model")


def _document_part(block: JSON) -> JSON:
    source = _source(block)
    if source.get("type") == "text":
        return {"type": "text", "text": str(source.get("data", ""))}
    if source.get("type") == "base64" and source.get("media_type") == "application/pdf":
        data = f"data:application/pdf;base64,{source.get('data', '')}"
        name = block.get("title") if isinstance(block.get("title"), str) else "document.pdf"
        return {"type": "file", "file": {"filename": name, "file_data": data}}
    raise _bad("documents must be base64 PDFs or plain text for this model")


def _user_part(block: JSON) -> JSON | None:
    kind = block.get("type")
    if kind == "text":
        return {"type": "text", "text": block.get("text", "")}
    if kind == "image":
        return _image_part(block)
    if kind == "document":
        return _document_part(block)
    if kind == SEARCH_RESULT:
        return {"type": "text", "text": search_result_text(block)}
    raise _bad(f"{kind} blocks are not supported for this model")


def references(content: Any) -> list[str]:
    """The tools a tool result's `tool_reference` blocks load (client-side tool search)."""
    return [
        str(b.get("tool_name"))
        for b in (content if isinstance(content, list) else [])
        if isinstance(b, dict) and b.get("type") == "tool_reference"
    ]


def _tool_result(block: JSON) -> tuple[JSON, list[JSON]]:
    """A tool message, and the images and documents of the result (sent after, in a user
    message: a tool message takes text only; Claude Code's Read tool returns PDFs so)."""
    content = block.get("content", "")
    images = [
        _image_part(b) if b.get("type") == "image" else _document_part(b)
        for b in (content if isinstance(content, list) else [])
        if isinstance(b, dict) and b.get("type") in ("image", "document")
    ]
    loaded = [f"Tool loaded: {name}" for name in references(content)]
    text = "\n".join(part for part in (text_of(content), *loaded) if part)
    if block.get("is_error"):
        text = f"Error: {text}" if text else "Error"
    call_id, _ = split_id(str(block.get("tool_use_id", "")))
    message = {"role": "tool", "tool_call_id": call_id, "content": text}
    return message, images


def user_messages(content: Any) -> list[JSON]:
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    out: list[JSON] = []
    parts: list[JSON] = []
    for block in content:
        if not isinstance(block, dict):
            raise _bad("content blocks must be objects")
        if block.get("type") == "tool_result":
            message, images = _tool_result(block)
            out.append(message)
            parts.extend(images)
        else:
            part = _user_part(block)
            if part is not None:
                parts.append(part)
    if parts:
        out.append({"role": "user", "content": parts})
    return out


def assistant_message(content: Any, model: str) -> JSON:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    texts: list[str] = []
    calls: list[JSON] = []
    for block in content:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "tool_use":
            arguments = json.dumps(block.get("input") or {}, ensure_ascii=False)
            function = {"name": str(block.get("name", "")), "arguments": arguments}
            call_id, signature = split_id(str(block.get("id", "")))
            call = {"id": call_id, "type": "function", "function": function}
            calls.append(with_signature(call, signature))
    # null content only beside tool calls: OpenAI refuses it alone (a turn of thinking alone)
    message: JSON = {"role": "assistant", "content": "".join(texts) or (None if calls else "")}
    if calls:
        message["tool_calls"] = calls
        if reasoning := _own_reasoning(content):
            message["reasoning_content"] = reasoning
    details = [d for block in content if isinstance(block, dict)
               for d in unseal(block.get("signature"), model)]  # fmt: skip
    if details:
        message["reasoning_details"] = details
    return message


def _own_reasoning(content: list[Any]) -> str:
    """The reasoning an OpenAI-compatible upstream gave in this turn: its thinking blocks, the
    unsigned or box-sealed ones (Anthropic's are not for it; a sealed one's text when omitted).
    Sent back on a turn that called tools, as DeepSeek's thinking mode demands (400 without)."""
    return "".join(
        str(block.get("thinking") or sealed_reasoning(block.get("signature")))
        for block in content
        if isinstance(block, dict)
        and block.get("type") == "thinking"
        and (not block.get("signature") or is_sealed(block["signature"]))
    )
