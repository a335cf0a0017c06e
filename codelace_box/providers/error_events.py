"""The HTTP status an error event at the start of a stream stands for (pure, no I/O).

An upstream may accept a streamed call (200) and send an error as its first event: Anthropic
documents that its errors can come so (`event: error`, `{"type": "error", "error": {"type":
"overloaded_error", ...}}`), OpenRouter sends `{"error": {"code": 429, "message": ...}}` for a
failure once it took the call, vLLM `{"error": {"type": "BadRequestError", "code": 400, ...}}`
(older: the error object alone, `"object": "error"`), llama.cpp an `error:` line of the same
shape, a proxy relaying Anthropic's error OpenAI's way `{"error": {"type": "overloaded_error",
"code": "529"}}`. The client has nothing yet, so the box answers it as it answers the same error
with that status (gateway/stream_start.py). The status is the one the error names (`code` as
a number, OpenRouter's, vLLM's, llama.cpp's), else the one its type or code stands for in the
provider's documentation, else 500: a server error, as any other.
"""

from __future__ import annotations

from typing import Any

from codelace_box.jsonwire import loads

SERVER_ERROR = 500
# Anthropic's error types (its errors page, with the status of each), OpenAI's types and
# codes, vLLM's and llama.cpp's types, by the status they come with in an error answer
_STATUS_OF: dict[str, int] = {
    "invalid_request_error": 400,
    "badrequesterror": 400,
    "exceed_context_size_error": 400,
    "context_length_exceeded": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "unsupported_country_region_territory": 403,  # OpenAI's (gateway/forbidden.py: a 503)
    "not_found_error": 404,
    "notfounderror": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "rate_limit_exceeded": 429,
    "ratelimiterror": 429,
    "insufficient_quota": 429,
    "api_error": 500,
    "server_error": 500,
    "internalservererror": 500,
    "unavailable_error": 503,
    "timeout_error": 504,
    "overloaded_error": 529,
    "server_is_overloaded": 529,
}


def error_event_status(data: str) -> int:
    """The status an error event's data stands for (see the module doc)."""
    try:
        body = loads(data)
    except ValueError:
        return SERVER_ERROR
    if not isinstance(body, dict):
        return SERVER_ERROR
    error = body.get("error")
    error = error if isinstance(error, dict) else body
    code, kind = error.get("code"), error.get("type")
    named = _named_status(code)
    if named is not None:
        return named
    for word in (kind, code):
        if isinstance(word, str) and (status := _STATUS_OF.get(word.lower())) is not None:
            return status
    return SERVER_ERROR


def _named_status(code: Any) -> int | None:
    """An error status given as the error's code (429, or "429"); None for anything else."""
    if isinstance(code, str) and code.isascii() and code.isdigit() and len(code) == 3:
        code = int(code)
    if isinstance(code, int) and not isinstance(code, bool) and 400 <= code <= 599:
        return code
    return None
