"""A server failure's answer (an upstream's 5xx, or another non-error status), only ever built
on the failure path: 502 `upstream_error`, or a 503 `upstream_overloaded` (on /v1/messages
Anthropic's `overloaded_error`, which Claude Code reads as overloaded) when the provider says it
is overloaded, as OpenAI's own API answers then: Anthropic's 529 (another server's too), or a
503 whose words or code say so (OpenAI's "The engine is currently overloaded, please try again
later", its `server_is_overloaded` code, Gemini's "The model is overloaded", Ollama's "Server
overloaded"). An overload keeps the upstream's Retry-After (`retry-after-ms` first), bounded as
a 429's (gateway/retry_after.py); both are tried on the next key first (gateway/upstream.py)."""

from __future__ import annotations

import re

from codelace_box.errors import UpstreamError, UpstreamOverloaded
from codelace_box.gateway.client import UpstreamResponse
from codelace_box.gateway.retry_after import upstream_wait_sec
from codelace_box.providers.openai_errors import error_fields

OVERLOADED = 529  # Anthropic's status for "overloaded_error"
UNAVAILABLE = 503
_OVERLOADED_RE = re.compile(r"\boverloaded\b", re.IGNORECASE)
_OVERLOAD_CODES = frozenset({"server_is_overloaded", "overloaded_error"})


def server_failure(
    name: str, response: UpstreamResponse, status: int, message: str, payload: bytes
) -> UpstreamError:
    """The error of an answer with `status` (5xx, or below 400: no answer), its words
    `message` (masked) and body `payload`."""
    if not overloaded(status, message, payload):
        return UpstreamError(f"{name} failed (HTTP {status}): {message}", code="upstream_error")
    error = UpstreamOverloaded(f"{name} is overloaded (HTTP {status}): {message}")
    retry_after, retry_after_ms = response.header("retry-after"), response.header("retry-after-ms")
    if retry_after or retry_after_ms:
        error.retry_after_sec = upstream_wait_sec(retry_after, retry_after_ms)
    return error


def overloaded(status: int, message: str, payload: bytes) -> bool:
    """Whether a server failure says the provider is overloaded (see the module doc)."""
    if status == OVERLOADED:
        return True
    if status != UNAVAILABLE:
        return False
    return _OVERLOADED_RE.search(message) is not None or error_fields(payload)[0] in _OVERLOAD_CODES
