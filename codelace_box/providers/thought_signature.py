"""Gemini's thought signatures through the Messages API, carried in the tool_use id.

Gemini 3 (its OpenAI-compatible endpoint) hands each function call a signature in
`extra_content.google.thought_signature` and refuses the next turn (400 "Function call is
missing a thought_signature") unless the call comes back with it. The Messages API has no place
for it but the call's id, which Claude Code returns verbatim in the tool_use and its
tool_result: `<call id>__thought__<signature, base64url>` (only the id's allowed characters, as
Anthropic checks them), split again on the way up. Pure: no I/O.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from codelace_box.providers.base import JSON

SEPARATOR = "__thought__"


def signature_of(call: JSON) -> str | None:
    """The thought signature an OpenAI-format tool call carries, if any."""
    extra = call.get("extra_content")
    google = extra.get("google") if isinstance(extra, dict) else None
    signature = google.get("thought_signature") if isinstance(google, dict) else None
    return signature if isinstance(signature, str) and signature else None


def signed_id(call_id: Any, signature: str | None) -> Any:
    """The tool_use id for a call and its signature (the id itself when there is none)."""
    if signature is None or not isinstance(call_id, str):
        return call_id
    encoded = base64.urlsafe_b64encode(signature.encode()).decode().rstrip("=")
    return f"{call_id}{SEPARATOR}{encoded}"


def split_id(tool_use_id: str) -> tuple[str, str | None]:
    """The upstream's call id and the signature a tool_use id carries (None: no signature)."""
    call_id, found, encoded = tool_use_id.partition(SEPARATOR)
    if not found:
        return tool_use_id, None
    try:
        padded = encoded + "=" * (-len(encoded) % 4)
        return call_id, base64.urlsafe_b64decode(padded.encode()).decode()
    except (binascii.Error, ValueError):
        return tool_use_id, None


def with_signature(call: JSON, signature: str | None) -> JSON:
    """An OpenAI-format tool call with Gemini's signature where it came from."""
    if signature is None:
        return call
    return {**call, "extra_content": {"google": {"thought_signature": signature}}}
