"""OpenRouter's `reasoning_details`, carried through the Messages and Responses dialects.

OpenRouter gives an assistant message (and stream deltas) a `reasoning_details` list beside its
`reasoning` text: `reasoning.text` {text, signature}, `reasoning.summary` {summary} and
`reasoning.encrypted` {data}, each with `id`, `format` (`anthropic-claude-v1`,
`google-gemini-v1`, `openai-responses-v1`, ...) and `index`. Its reasoning tokens guide asks
for them back, unchanged, on the assistant message of a tool loop's next turn: Claude's
thinking signatures are in them, and Gemini 3 refuses a function call that lost its thought
signature (400 "Function call is missing a thought_signature"). A chat client hands the message
back itself (the box passes it through); Claude Code and Codex hand back only their own
dialect's shapes, so the details ride in the field each returns untouched: a thinking block's
`signature` (Messages) and a reasoning item's `encrypted_content` (Responses), as
`codelace-rd-v1:` + a tag of the catalog model + `:` + base64url JSON. On the way up they go
back as `reasoning_details` only to the model that wrote them (another model, or Anthropic
after Claude Code's /model, never sees them). Streamed pieces of one detail share its `index`
and type: their text and summary add up, the other fields are the last given (as OpenRouter's
own clients merge them). An answer whose thinking text was left out (Anthropic's
`thinking.display: "omitted"`) carries that text in the seal too, as a detail of the box's own
(`codelace.reasoning`): never sent up as a detail, read back as the reasoning the block held
(DeepSeek's tool loop needs it: providers/messages_openai.py). Pure code.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from codelace_box.jsonwire import NOT_JSON, loads

JSON = dict[str, Any]

PREFIX = "codelace-rd-v1:"
_ADDED = ("text", "summary")  # a streamed detail's pieces add up these
_KEYS = ("index", "type")
OWN_REASONING = "codelace.reasoning"  # the box's own detail: thinking text an answer left out


def model_tag(model: str) -> str:
    """8 hex digits naming a catalog model (a hash of its id)."""
    return hashlib.sha256(model.encode()).hexdigest()[:8]


def details_of(holder: Any) -> list[JSON]:
    """The `reasoning_details` of a chat message or delta (its objects only)."""
    details = holder.get("reasoning_details") if isinstance(holder, dict) else None
    return [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []


def merge(pieces: list[JSON]) -> list[JSON]:
    """The whole details of a stream's pieces, in the order they began; an encrypted detail
    without data is dropped (OpenRouter refuses it back)."""
    merged: dict[tuple[str, str], JSON] = {}
    for piece in pieces:
        key = (str(piece.get("index", 0)), str(piece.get("type")))
        whole = merged.setdefault(key, {})
        for name, value in piece.items():
            if name in _ADDED and isinstance(value, str):
                whole[name] = str(whole.get(name) or "") + value
            elif name in _KEYS or value not in (None, ""):
                whole[name] = value
    return [d for d in merged.values()
            if d.get("type") != "reasoning.encrypted" or d.get("data")]  # fmt: skip


def seal(details: list[JSON], model: str) -> str:
    """The opaque string that carries these details of `model`'s through a client."""
    raw = json.dumps(details, separators=(",", ":"), ensure_ascii=False).encode()
    return f"{PREFIX}{model_tag(model)}:{base64.urlsafe_b64encode(raw).decode()}"


def with_reasoning(details: list[JSON], reasoning: str) -> list[JSON]:
    """The details with the thinking text an answer left out (none: as they are)."""
    return [*details, {"type": OWN_REASONING, "text": reasoning}] if reasoning else details


def is_sealed(value: Any) -> bool:
    """Whether a signature or encrypted_content is one of the box's sealed details."""
    return isinstance(value, str) and value.startswith(PREFIX)


def unseal(value: Any, model: str) -> list[JSON]:
    """The details a sealed string carries when `model` wrote them; [] for anything else
    (another model's, Anthropic's own signatures, OpenAI's encrypted reasoning, tampering)."""
    if not model or not is_sealed(value):
        return []
    tag, _, _encoded = value[len(PREFIX) :].partition(":")
    if tag != model_tag(model):
        return []
    return [d for d in _opened(value) if d.get("type") != OWN_REASONING]


def sealed_reasoning(value: Any) -> str:
    """The thinking text a sealed signature carries for an answer that left it out, whichever
    model wrote it (as a thinking block's text in the clear goes back to any); "" if none."""
    if not is_sealed(value):
        return ""
    own = (d.get("text") for d in _opened(value) if d.get("type") == OWN_REASONING)
    return "".join(text for text in own if isinstance(text, str))


def sealed_text(value: str) -> str:
    """The readable text a sealed string carries (the reasoning left out, the details' text
    and summaries; not their encrypted data or signatures): what the model reads of it."""
    texts = (d.get("summary" if d.get("type") == "reasoning.summary" else "text")
             for d in _opened(value))  # fmt: skip
    return "".join(text for text in texts if isinstance(text, str))


def reasoning_shown(body: JSON) -> tuple[JSON, int]:
    """A Messages body with the reasoning sealed in thinking blocks' signatures as their text
    (as the model reads it: what an estimate counts), and how many bytes fewer that is; the
    body itself if none is."""
    messages, fewer = body.get("messages"), 0
    shown: list[Any] = []
    for message in messages if isinstance(messages, list) else ():
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            shown.append(message)
            continue
        blocks = [_shown_block(block) for block in content]
        fewer += sum(cut for _, cut in blocks)
        shown.append({**message, "content": [block for block, _ in blocks]})
    return ({**body, "messages": shown}, fewer) if fewer else (body, 0)


def _shown_block(block: Any) -> tuple[Any, int]:
    """A thinking block with its sealed reasoning as its text, and the bytes that saves."""
    signature = block.get("signature") if isinstance(block, dict) else None
    if not isinstance(signature, str) or not is_sealed(signature):
        return block, 0
    text, thinking = sealed_text(signature), block.get("thinking")
    shown = {**block, "thinking": (thinking if isinstance(thinking, str) else "") + text,
             "signature": ""}  # fmt: skip
    return shown, len(signature) - len(text.encode())


def _opened(value: str) -> list[JSON]:
    """The details in a sealed string ([] for junk)."""
    _tag, _, encoded = value[len(PREFIX) :].partition(":")
    try:
        details = loads(base64.urlsafe_b64decode(encoded.encode()))
    except NOT_JSON:
        return []
    return [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []
