"""The HTTP status an error event at the start of a stream stands for (pure, no I/O).

An upstream may accept a streamed call (200) and send an error as its first event: Anthropic
documents that its errors can come so (`event: error`, `{"type": "error", "error": {"type":
"overloaded_error", ...}}`), OpenRouter sends `{"error": {"code": 429, "message": ...}}` for a
failure once it took the call, vLLM `{"error": {"type": "BadRequestError", "code": 400, ...}}`
(older: the error object alone, `"object": "error"`), llama.cpp an `error:` line of the same
shape, a proxy relaying Anthropic's error OpenAI's way `{"error": {"type": "overloaded_error",
"code": "529"}}`, a native Responses server `response.failed` (the error in `response.error`)
or an `error` event (`{"type": "error", "code", "message", "param"}`). The client has nothing
yet, so the box answers it as it answers the same error with that status
(gateway/stream_start.py). The status is the one the error names (`code` as
a number, OpenRouter's, vLLM's, llama.cpp's), else the one its type or code stands for in the
provider's documentation, else 500: a server error, as any other. A Responses event is read as
the error answer it stands for (`error_answer`), so its words, code and param reach the client
as an error status's would.
"""

from __future__ import annotations

from typing import Any

from codelace_box.jsonwire import NOT_JSON, dumps, loads

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
    "invalid_prompt": 400,  # the Responses API's (a failed response's `error.code`)
}
# The Responses API's codes for an image in the input it cannot take: the request's fault (400)
_IMAGE_CODES = frozenset({
    "invalid_image", "invalid_image_format", "invalid_base64_image", "invalid_image_url",
    "image_too_large", "image_too_small", "image_parse_error", "image_content_policy_violation",
    "invalid_image_mode", "image_file_too_large", "unsupported_image_media_type",
    "empty_image_file", "failed_to_download_image", "image_file_not_found",
})  # fmt: skip
_RESPONSE_ERROR_FIELDS = ("code", "message", "param")  # an `error` event's (its type: "error")


def error_answer(data: str) -> str:
    """An error event's data as the error answer it stands for: a Responses `response.failed`
    as `{"error": response.error}`, a Responses `error` event (its fields at the top) as
    `{"error": {code, message, param}}`; any other as it is."""
    try:
        body = loads(data)
    except NOT_JSON:
        return data
    kind = body.get("type") if isinstance(body, dict) else None
    if kind == "response.failed":
        response = body.get("response")
        error = response.get("error") if isinstance(response, dict) else None
        error = error if isinstance(error, dict) else {"message": "the upstream's response failed"}
    elif kind == "error" and "error" not in body:  # (Anthropic's has its error inside)
        error = {name: body[name] for name in _RESPONSE_ERROR_FIELDS if name in body}
    else:
        return data
    return dumps({"error": error}).decode()


def error_event_status(data: str) -> int:
    """The status an error event's data stands for (see the module doc)."""
    try:
        body = loads(data)
    except NOT_JSON:
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
        if isinstance(word, str) and word.lower() in _IMAGE_CODES:
            return 400
    return SERVER_ERROR


def _named_status(code: Any) -> int | None:
    """An error status given as the error's code (429, or "429"); None for anything else."""
    if isinstance(code, str) and code.isascii() and code.isdigit() and len(code) == 3:
        code = int(code)
    if isinstance(code, int) and not isinstance(code, bool) and 400 <= code <= 599:
        return code
    return None
