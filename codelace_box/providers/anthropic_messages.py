"""OpenAI chat `messages` -> Anthropic `system` blocks and strictly alternating turns (pure code).

System/developer messages go to the top-level `system`; user/assistant/tool messages become
user/assistant turns (consecutive same-role messages merged, tool results first in their user
turn); images become base64 (typed by their bytes) or url sources, PDF files document blocks
(in user messages and in tool results alike); assistant `tool_calls` become `tool_use` blocks
and `tool` messages `tool_result` blocks (call ids made acceptable, and unique in the request).
A message's `name` is left out while it tells no two speakers of one role apart, else refused.
A part's `cache_control` (the prompt-cache breakpoint OpenRouter, LiteLLM and Portkey take in
this format) stays on its block (cached_block; a tool's and a tool call's too), and a message's
own (LiteLLM's, for string content and tool results) goes on the last block the message
became. Anything Anthropic cannot take raises InvalidRequest (400).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from codelace_box.errors import InvalidRequest
from codelace_box.jsonwire import NOT_JSON, loads

JSON = dict[str, Any]

IMAGE_MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
_THINKING = ("thinking", "redacted_thinking")
# On a handed-back thinking block: how many of the turn's tool calls came before it (Claude
# thinks between calls; Anthropic refuses the latest turn's thinking moved). Never sent.
CALLS_BEFORE = "codelace_calls_before"
TOOL_ID_RE = re.compile(r"^[a-zA-Z0-9_-]+$")
CACHE_TTLS = ("5m", "1h")
# An image's first bytes in base64, and the format they open (_image_format)
_IMAGE_STARTS = (("iVBORw0KGgo", "image/png"), ("/9j/", "image/jpeg"), ("R0lGOD", "image/gif"))
_DATA_URL_RE = re.compile(r"^data:(?P<media>[\w.+-]+/[\w.+-]+);base64,(?P<data>.+)$", re.DOTALL)


def translate_messages(messages: Any) -> tuple[list[JSON], list[JSON]]:
    """(system text blocks, alternating user/assistant turns) for OpenAI `messages`."""
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages must be a non-empty list", param="messages")
    system: list[JSON] = []
    turns: list[JSON] = []
    names: dict[Any, Any] = {}  # role -> the first participant name given to it
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise InvalidRequest(f"{where} must be an object", param=where)
        _check_name(names, message, where)
        role = message.get("role")
        if role in ("system", "developer"):
            system += _own_breakpoint(_text_blocks(message.get("content"), where), message, where)
            continue
        anthropic_role, blocks = _message_blocks(message, role, where)
        if blocks:
            _own_breakpoint(blocks, message, where)
            _append_turn(turns, anthropic_role, blocks)
    _unique_tool_ids(turns)
    _check_turns(turns)
    last = turns[-1]["content"][-1]
    if turns[-1]["role"] == "assistant" and last["type"] == "text":
        last["text"] = last["text"].rstrip()  # a prefill may not end in whitespace
    for turn in turns:  # stable sorts: tool results lead a user turn, thinking an assistant's
        if turn["role"] == "user":
            turn["content"].sort(key=lambda block: block["type"] != "tool_result")
        else:  # (thinking between its calls stays there: CALLS_BEFORE)
            content = turn["content"]
            head = next((k for k, b in enumerate(content) if b["type"] == "tool_use"), None)
            content[:head] = sorted(content[:head], key=lambda b: b["type"] not in _THINKING)
            if content[0]["type"] not in _THINKING:  # (the only thinking is after a call)
                content.sort(key=lambda block: block["type"] not in _THINKING)
    return system, turns


def _check_name(names: dict[Any, Any], message: JSON, where: str) -> None:
    """Anthropic has no participant `name`: it is left out while it tells nobody apart, and
    refused once two names share a role (dropped, their speakers would merge into one)."""
    name, role = message.get("name"), message.get("role")
    if name in (None, "") or role == "tool":
        return
    first = names.setdefault(role, name)
    if first != name:
        raise InvalidRequest(
            f"{where}.name: Anthropic models have no participant names, and {name!r} and "
            f"{first!r} would become one {role}; put the speaker's name in the content instead",
            param=f"{where}.name",
        )


def _own_breakpoint(blocks: list[JSON], message: JSON, where: str) -> list[JSON]:
    """The blocks with the message's own `cache_control` (where LiteLLM takes the breakpoint of
    a string content, and of a tool message's result) on the last of them, unless that one has
    its own (thinking blocks take none)."""
    if message.get("cache_control") is not None and blocks:
        last = blocks[-1]
        if "cache_control" not in last and last["type"] not in _THINKING:
            cached_block(last, message, where)
    return blocks


def _message_blocks(message: JSON, role: Any, where: str) -> tuple[str, list[JSON]]:
    if role == "user":
        blocks = _user_blocks(message.get("content"), where)
        if not blocks:
            raise InvalidRequest(f"{where}: a user message needs non-empty content", param=where)
        return "user", blocks
    if role == "assistant":
        return "assistant", _assistant_blocks(message, where)
    if role == "tool":
        return "user", [_tool_result_block(message, where)]
    raise InvalidRequest(
        f"{where}: role must be system, developer, user, assistant or tool, got {role!r}",
        param=where,
    )


def _append_turn(turns: list[JSON], role: str, blocks: list[JSON]) -> None:
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": list(blocks)})


def _unique_tool_ids(turns: list[JSON]) -> None:
    """Tool call ids made unique in the whole conversation, in place: Anthropic refuses a
    tool_use id seen before in the request ("`tool_use` ids must be unique"), and servers that
    number their calls per answer ("call_0", Kimi's "functions.f:0" at some hosts) repeat them.
    A repeated id gets a suffix, and the tool results of the next turn answering it follow
    (in order, when one answer used an id twice). Ids never repeated stay as they are."""
    seen: set[str] = set()
    renamed: dict[str, list[str]] = {}  # the last assistant turn's ids -> what they became
    for turn in turns:
        if turn["role"] == "assistant":
            renamed = {}
            for block in turn["content"]:
                if block["type"] == "tool_use":
                    given = block["id"]
                    block["id"] = _unused_id(given, seen)
                    seen.add(block["id"])
                    renamed.setdefault(given, []).append(block["id"])
            continue
        for block in turn["content"]:
            ids = renamed.get(block["tool_use_id"]) if block["type"] == "tool_result" else None
            if ids:
                block["tool_use_id"] = ids.pop(0) if len(ids) > 1 else ids[0]


def _unused_id(call_id: str, seen: set[str]) -> str:
    """`call_id`, or, if already used, it with the first suffix `_2`, `_3`, ... not used."""
    n = 2
    unused = call_id
    while unused in seen:
        unused = f"{call_id}_{n}"
        n += 1
    return unused


def _check_turns(turns: list[JSON]) -> None:
    """The first turn must be the user's, and tool results must answer the preceding tool calls."""
    if not turns:
        raise InvalidRequest("messages need at least one user message", param="messages")
    if turns[0]["role"] != "user":
        raise InvalidRequest(
            "Anthropic models need the conversation to start with a user message "
            "(after any system messages)",
            param="messages",
        )
    called: set[str] = set()
    for turn in turns:
        if turn["role"] == "assistant":
            called = {b["id"] for b in turn["content"] if b["type"] == "tool_use"}
            continue
        for block in turn["content"]:
            if block["type"] == "tool_result" and block["tool_use_id"] not in called:
                raise InvalidRequest(
                    f"tool message for tool_call_id {block['tool_use_id']!r} does not answer a "
                    "tool call of the assistant message before it",
                    param="messages",
                )


def _text_blocks(content: Any, where: str) -> list[JSON]:
    """Text blocks of string content or of a list of text (or refusal) parts.

    Empty or whitespace-only text is left out: Anthropic refuses such blocks.
    """
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content.strip() else []
    if not isinstance(content, list):
        raise InvalidRequest(f"{where}.content must be a string or a list of parts", param=where)
    blocks: list[JSON] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        text = part.get("text") if kind == "text" else None
        if kind == "refusal":
            text = part.get("refusal")
        if not isinstance(text, str):
            raise InvalidRequest(f"{where}: only text parts are allowed here", param=where)
        if text.strip():
            blocks.append(cached_block({"type": "text", "text": text}, part, where))
    return blocks


def cached_block(block: JSON, part: JSON, where: str) -> JSON:
    """The block (or tool) with the part's (or OpenAI tool's) `cache_control` breakpoint, if
    it has one (checked)."""
    control = part.get("cache_control")
    if control is None:
        return block
    ttl = control.get("ttl") if isinstance(control, dict) else None
    if (
        not isinstance(control, dict)
        or control.get("type") != "ephemeral"
        or set(control) - {"type", "ttl"}
        or (ttl is not None and ttl not in CACHE_TTLS)
    ):
        raise InvalidRequest(
            f'{where}: cache_control must be {{"type": "ephemeral"}}, with an optional ttl of '
            f"{' or '.join(CACHE_TTLS)}",
            param=where,
        )
    block["cache_control"] = dict(control)
    return block


def _user_blocks(content: Any, where: str) -> list[JSON]:
    if not isinstance(content, list):
        return _text_blocks(content, where)
    blocks: list[JSON] = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        at = f"{where}.content[{j}]"
        if kind == "image_url":
            blocks.append(cached_block(_image_block(part.get("image_url"), at), part, at))
        elif kind == "file":
            blocks.append(cached_block(_document_block(part.get("file"), at), part, at))
        elif kind == "text":
            blocks += _text_blocks([part], where)
        else:
            raise InvalidRequest(
                f"{where}.content[{j}]: part type {kind!r} is not supported by Anthropic models "
                "(use text, image_url or a PDF file)",
                param=where,
            )
    return blocks


def _image_block(image_url: Any, where: str) -> JSON:
    url = image_url.get("url") if isinstance(image_url, dict) else image_url
    if not isinstance(url, str) or not url:
        raise InvalidRequest(f"{where}: image_url.url must be a URL string", param=where)
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    media_type, data = _parse_data_url(url, where)
    media_type = _image_format(data) or media_type
    if media_type == "image/jpg":  # a common misspelling that OpenAI accepts
        media_type = "image/jpeg"
    if media_type not in IMAGE_MEDIA_TYPES:
        raise InvalidRequest(
            f"{where}: image type {media_type} is not supported "
            f"(use one of {', '.join(IMAGE_MEDIA_TYPES)})",
            param=where,
        )
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def _image_format(data: str) -> str | None:
    """The format an image's first bytes (base64) open, of those Anthropic takes, else None.

    OpenAI reads the bytes, so clients label data URLs loosely (a JPEG as image/png, anything
    as octet-stream); Anthropic refuses a media type the bytes belie ("Image does not match
    the provided media type"). A WEBP file opens with RIFF, its size, then WEBP."""
    for start, media_type in _IMAGE_STARTS:
        if data.startswith(start):
            return media_type
    return "image/webp" if data.startswith("UklGR") and data[12:16] == "RUJQ" else None


def _document_block(file: Any, where: str) -> JSON:
    data_url = file.get("file_data") if isinstance(file, dict) else None
    if not isinstance(data_url, str):
        raise InvalidRequest(f"{where}: file parts need file_data as a data URL", param=where)
    media_type, data = _parse_data_url(data_url, where)
    if media_type != "application/pdf":
        raise InvalidRequest(
            f"{where}: only PDF files are supported, got {media_type}", param=where
        )
    source = {"type": "base64", "media_type": media_type, "data": data}
    return {"type": "document", "source": source}


def _parse_data_url(url: str, where: str) -> tuple[str, str]:
    match = _DATA_URL_RE.match(url)
    if match is None:
        raise InvalidRequest(
            f"{where}: expected an http(s) URL or a base64 data URL (data:<type>;base64,...)",
            param=where,
        )
    return match["media"].lower(), match["data"]


def _assistant_blocks(message: JSON, where: str) -> list[JSON]:
    texts = _text_blocks(message.get("content"), where)
    refusal = message.get("refusal")  # OpenAI's refused answer, handed back with content null
    if not texts and isinstance(refusal, str):
        texts = _text_blocks(refusal, where)
    thinking = message.get("thinking_blocks")
    tool_calls = message.get("tool_calls") or []
    if not isinstance(tool_calls, list):
        raise InvalidRequest(f"{where}.tool_calls must be a list", param=where)
    blocks = _thinking_blocks(thinking, 0, not tool_calls) + texts
    for k, call in enumerate(tool_calls):
        if k:  # thinking the model did between calls goes back where it was
            blocks += _thinking_blocks(thinking, k, False)
        blocks.append(_tool_use_block(call, f"{where}.tool_calls[{k}]"))
    return blocks + (_thinking_blocks(thinking, len(tool_calls), True) if tool_calls else [])


def _thinking_blocks(blocks: Any, at: int, rest: bool) -> list[JSON]:
    """Thinking blocks an earlier response handed out, passed back unchanged (signed ones only):
    those that came after `at` of the turn's tool calls (`rest`: after `at` or more)."""
    if not isinstance(blocks, list):
        return []
    kept: list[JSON] = []
    for block in blocks:
        if not isinstance(block, dict):
            continue
        before = block.get(CALLS_BEFORE)
        before = before if isinstance(before, int) else 0
        if not (before == at or (rest and before > at)):
            continue
        if block.get("type") == "thinking" and block.get("signature"):
            kept.append(
                {
                    "type": "thinking",
                    "thinking": block.get("thinking", ""),
                    "signature": block["signature"],
                }
            )
        elif block.get("type") == "redacted_thinking" and block.get("data"):
            kept.append({"type": "redacted_thinking", "data": block["data"]})
    return kept


def _tool_use_block(call: Any, where: str) -> JSON:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise InvalidRequest(f"{where} needs function.name", param=where)
    if not isinstance(call.get("id"), str) or not call["id"]:
        raise InvalidRequest(f"{where} needs an id", param=where)
    arguments = function.get("arguments") or "{}"
    try:
        parsed = loads(arguments) if isinstance(arguments, str) else arguments
    except NOT_JSON:
        raise InvalidRequest(f"{where}.function.arguments is not valid JSON", param=where) from None
    if not isinstance(parsed, dict):
        raise InvalidRequest(f"{where}.function.arguments must be a JSON object", param=where)
    block = {"type": "tool_use", "id": tool_id(call["id"]), "name": function["name"]}
    return cached_block(block | {"input": parsed}, call, where)  # LiteLLM's breakpoint on a call


def tool_id(call_id: str) -> str:
    """A tool call id Anthropic accepts (^[a-zA-Z0-9_-]+$): kept if it already is, else mapped.

    Ids from other providers (e.g. "functions.f:0") map to the same new id in the tool_use and
    its tool_result; a hash suffix keeps distinct ids distinct.
    """
    if TOOL_ID_RE.match(call_id):
        return call_id
    digest = hashlib.sha256(call_id.encode()).hexdigest()[:8]
    return f"{re.sub(r'[^a-zA-Z0-9_-]', '_', call_id)}_{digest}"


def _tool_result_block(message: JSON, where: str) -> JSON:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise InvalidRequest(f"{where}: a tool message needs tool_call_id", param=where)
    block: JSON = {"type": "tool_result", "tool_use_id": tool_id(call_id)}
    content = message.get("content")
    if isinstance(content, str):
        if content.strip():
            block["content"] = content
    else:  # text, images and PDFs: Anthropic's tool_result holds them all
        parts = _user_blocks(content, where)
        if parts:
            block["content"] = parts
    return block
