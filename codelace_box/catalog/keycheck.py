"""Test one provider key against its upstream's model list; the answer never holds the key.

openai kind: GET {base}/models with `Authorization: Bearer` (OpenRouter, whose model list is
public, GET {base}/key, which needs the key); anthropic kind: GET {base}/v1/models with
`x-api-key` and `anthropic-version`. A 2xx means the key works; 401/403 means the upstream
refuses it (and so does Gemini's 400 whose details say API_KEY_INVALID), except OpenAI's answer
to a restricted key without the scope of the model list (401 "Missing scopes: api.model.read"):
that key is valid, it only may not list models. Any other answer (or none) says what went wrong.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from codelace_box.crypto import mask_in
from codelace_box.errors import InvalidRequest
from codelace_box.jsonwire import NOT_JSON
from codelace_box.providers import PROVIDER_KINDS, adapter_for
from codelace_box.providers.openai_errors import says_key_invalid
from codelace_box.tls_client import client_tls

MAX_MESSAGE = 200
BODY_BYTES = 8 * 2**20  # of a probe's answer read: the longest model lists are a few MB


@dataclass(frozen=True)
class KeyCheckResult:
    """The verdict on a key: ok, the upstream's HTTP status (None: no answer) and a message."""

    ok: bool
    status: int | None
    message: str
    key_invalid: bool = False  # another status saying so (Gemini's 400 API_KEY_INVALID)

    @property
    def refused(self) -> bool:
        """The upstream answered that the key is not valid (401/403, and no missing scope)."""
        return not self.ok and (self.status in (401, 403) or self.key_invalid)


def check_request(kind: str, base_url: str, api_key: str) -> tuple[str, dict[str, str]]:
    """The URL and headers that ask an upstream of this kind whether it accepts the key (each
    provider adapter knows its own)."""
    if kind not in PROVIDER_KINDS:
        raise InvalidRequest(f"cannot test a key of provider kind {kind!r}")
    return adapter_for(kind).key_check_request(base_url, api_key)


async def check_key(
    kind: str, base_url: str, api_key: str, *, timeout_sec: float = 10.0
) -> KeyCheckResult:
    """Ask the upstream whether it accepts the key."""
    import httpx  # only here: the server starts without it (about 0.1-0.25 s of imports)

    url, headers = check_request(kind, base_url, api_key)
    headers["accept"] = "application/json"
    try:  # httpx's timeout is between two bytes: the whole answer gets `timeout_sec` too
        async with (
            asyncio.timeout(timeout_sec),
            httpx.AsyncClient(timeout=timeout_sec, verify=client_tls()) as client,
            client.stream("GET", url, headers=headers) as response,
        ):
            status, body = response.status_code, await _start_of(response)
    except (httpx.TimeoutException, TimeoutError):
        return KeyCheckResult(False, None, f"no answer from {url} within {timeout_sec:g} s")
    except httpx.HTTPError as exc:
        reason = redact(str(exc) or type(exc).__name__, api_key)
        return KeyCheckResult(False, None, f"cannot reach {url}: {reason}")
    return verdict(status, body, api_key)


async def _start_of(response: Any) -> bytes:
    """The first BODY_BYTES of an answer (the verdict needs its status and message, a model
    list's count at most): an upstream's huge answer is not held in memory."""
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk[: BODY_BYTES - len(body)]
        if len(body) >= BODY_BYTES:
            break
    return bytes(body)


def verdict(status: int, body: bytes, api_key: str) -> KeyCheckResult:
    """The result for an upstream answer (the key is masked out of anything it echoed)."""
    if 200 <= status < 300:
        count = _model_count(body)
        listed = f" ({count} model{'' if count == 1 else 's'} listed)" if count is not None else ""
        return KeyCheckResult(True, status, f"the key works{listed}")
    detail = redact(upstream_message(body), api_key)[:MAX_MESSAGE]
    if status in (401, 403) and _missing_scope(detail):
        return KeyCheckResult(True, status, f"the key works (it may not list models: {detail})")
    invalid = status == 400 and says_key_invalid(body)  # Gemini's OpenAI-compatible endpoint
    if status in (401, 403) or invalid:
        refusal = f"the upstream refused the key ({status}): {detail}"
        return KeyCheckResult(False, status, refusal, key_invalid=invalid)
    return KeyCheckResult(False, status, f"the upstream answered {status}: {detail}")


def upstream_message(body: bytes) -> str:
    """The human message of an OpenAI- or Anthropic-shaped error body, else the body."""
    try:
        payload = json.loads(body)
    except NOT_JSON:
        payload = None
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str):
            return error
    return body.decode("utf-8", errors="replace").strip() or "(empty body)"


def _missing_scope(message: str) -> bool:
    """Whether the upstream accepted the key but not for this endpoint: OpenAI's restricted keys
    answer 401 "You have insufficient permissions ... Missing scopes: api.model.read ..."."""
    return "Missing scopes:" in message


def redact(text: str, api_key: str) -> str:
    """Text with every occurrence of the key replaced by its mask."""
    return mask_in(text, api_key)


def _model_count(body: bytes) -> int | None:
    try:
        payload = json.loads(body)
    except NOT_JSON:
        return None
    data = payload.get("data") if isinstance(payload, dict) else None
    return len(data) if isinstance(data, list) else None
