"""Whether an upstream's refusal is of the operator's key rather than of the request.

A 401 always is. A 403 is when its error names the key, authentication or permission (its
message, type or code, or Google's status: PERMISSION_DENIED); any other 403 refuses the
request's content (OpenRouter's moderation). A 400 is when its error says so in its structured
details or OpenAI's own words: Gemini's OpenAI-compatible endpoint answers a key that is not
valid or has expired with a 400 INVALID_ARGUMENT whose details give the reason API_KEY_INVALID,
xAI with a 400 "Incorrect API key provided" (providers/openai_errors.py); no other words make a
400 the key's (a field named like one, `prompt_cache_key`, is the request's). Pure code, no I/O.
"""

from __future__ import annotations

import re

from codelace_box.providers.openai_errors import error_body, says_key_invalid

# A 403 about the key rather than the content names the key, authentication or permission.
_KEY_BLAME_RE = re.compile(
    r"api[ _-]?key|\bkey\b|authenticat|unauthori[sz]ed|permission|credential|"
    r"access[ _-]?denied|access[ _-]?token",
    re.IGNORECASE,
)


def blames_key(payload: bytes, message: str) -> bool:
    """Whether a 403's error says the key (its validity or permission) is at fault: its
    message, type or code, or Google's status (PERMISSION_DENIED, whatever the message)."""
    body = error_body(payload)
    error = body.get("error") if isinstance(body, dict) else None
    words = [message]
    if isinstance(error, dict):
        words += [str(error.get(name) or "") for name in ("type", "code", "status")]
    return any(_KEY_BLAME_RE.search(word) for word in words)


def refuses_key(status: int, payload: bytes, message: str) -> bool:
    """Whether an error answer (its status, body and message) refuses the operator's key."""
    if status == 401:
        return True
    if status == 403:
        return blames_key(payload, message)
    return status == 400 and says_key_invalid(payload)
