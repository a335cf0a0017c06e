"""What an `openai`-kind upstream's errors say: its error object's message, `code` and
`param` (relayed only when plain), a proxy's page by its title, the failure reported in place
of an answer; anything like a key redacted on the way."""

from __future__ import annotations

import re
from typing import Any

from codelace_box.crypto import mask_keys
from codelace_box.errors import UpstreamError
from codelace_box.jsonwire import NOT_JSON, loads
from codelace_box.providers.base import JSON

# A key the upstream masked itself as it echoed it (OpenAI's "sk-abc********wxyz"): a run
# after the prefix with stars in it (the run taken whole, then looked in: a star required inside
# the pattern made every `sk-` of a long run scan to its end, seconds for 64 KB of "sk-sk-...")
_ECHOED_KEY_RE = re.compile(r"\b(sk|cl|key|rk)[-_][A-Za-z0-9_*\-]*")
_HTML_TITLE_RE = re.compile(r"<title[^>]*>([^<]{1,200})</title>", re.IGNORECASE)
# OpenAI's 429 insufficient_quota: the operator's account has no money left (not a rate limit);
# its 429 billing_not_active ("Your account is not active, please check your billing details"):
# the account's billing is not set up, or was cancelled
_QUOTA_RE = re.compile(
    r"exceeded your current quota|\binsufficient_quota\b|your account is not active|"
    r"\bbilling_not_active\b",
    re.IGNORECASE,
)
# OpenRouter's 403 for a key past the credit limit the operator set on it ("Key limit exceeded
# (daily limit). Manage it using https://openrouter.ai/settings/keys"): the key wants paying (or
# its period's reset), as a 402 does; it is not refused, so it is neither probed nor parked
_KEY_LIMIT_RE = re.compile(r"^key limit (exceeded|reached)\b", re.IGNORECASE)
# An error object's code relayed as it is: a plain word (OpenAI's are snake_case); a param up
# to this long, printable (OpenAI's name a field: `messages[3].content[0].image_url`)
_ERROR_CODE_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.:-]{0,63}")
MAX_PARAM_CHARS = 200
_INCORRECT_KEY = "Incorrect API key provided"  # OpenAI's words (xAI's too, with a 400)


def redact(text: str) -> str:
    """Hide anything that looks like an API key: by crypto's one rule (keys by their shape,
    words kept), and a key the upstream masked itself as `sk-***` (upstreams echo masked keys
    in 401s)."""
    return mask_keys(_ECHOED_KEY_RE.sub(_echoed_key_masked, text))


def _echoed_key_masked(match: re.Match[str]) -> str:
    return match.group(1) + "-***" if "*" in match.group(0) else match.group(0)


def error_body(payload: bytes) -> Any:
    """An error answer's JSON (Gemini's OpenAI endpoint sends it as a list of one); None when
    it is none."""
    try:
        body = loads(payload)
    except NOT_JSON:
        return None
    if isinstance(body, list) and body and isinstance(body[0], dict):
        return body[0]
    return body


def says_key_invalid(payload: bytes) -> bool:
    """Whether an error body says the key is not valid where its status does not (a 400):
    Google's structured reason (Gemini's OpenAI endpoint: `error.details[].reason`
    API_KEY_INVALID, for a key not valid or expired), or OpenAI's own words for a wrong key,
    "Incorrect API key provided", which xAI answers with a 400."""
    body = error_body(payload)
    error = body.get("error") if isinstance(body, dict) else None
    if error_text(error).startswith(_INCORRECT_KEY):
        return True
    details = error.get("details") if isinstance(error, dict) else None
    if not isinstance(details, list):
        return False
    return any(isinstance(d, dict) and d.get("reason") == "API_KEY_INVALID" for d in details)


def _plain_param(param: Any) -> bool:
    """Whether an error's `param` may be relayed: printable text of a field name's length,
    nothing like a key in it."""
    if not isinstance(param, str) or not 0 < len(param) <= MAX_PARAM_CHARS:
        return False
    return param.isprintable() and redact(param) == param


def page_title(payload: bytes) -> str:
    """The title of an HTML page (a proxy's, a firewall's), keys redacted; "" for none."""
    title = _HTML_TITLE_RE.search(payload[:4096].decode("utf-8", "replace"))
    return redact(" ".join(title.group(1).split())) if title else ""


def page_text(payload: bytes) -> str:
    """What an error body that is not the API's JSON says: a proxy's HTML page by its title
    (not its markup), else the start of the text, keys redacted; "" for an empty body."""
    title = page_title(payload)
    if title:
        return "an HTML page: " + title
    return redact(" ".join(payload[:300].decode("utf-8", "replace").split()))


def reported_error(body: JSON) -> Any:
    """The error an upstream reports in a body or stream event: `{"error": ...}`, or the bare
    `{"object": "error", "message": ...}` of older vLLM; None when there is none."""
    if body.get("error"):
        return body["error"]
    if body.get("object") == "error":
        return body
    return None


def raise_reported_error(payload: JSON) -> None:
    """Raise the failure an answer reports in place of its content (OpenRouter: a failure after
    it accepted the call is a 200 with an `error` body), if it reports one."""
    error = reported_error(payload)
    if error is not None:
        raise UpstreamError(f"the upstream failed: {error_text(error)}", code="upstream_error")


def failed_finish(choice: JSON) -> str | None:
    """What went wrong, for a choice the server ended with finish_reason "error" (OpenRouter's
    for a generation that failed after it began, its error on the choice, with or without a
    top-level one): its error's message, if it gave one; None for any other choice."""
    if choice.get("finish_reason") != "error":
        return None
    error = choice.get("error")
    said = error_text(error) if error else "the upstream reported an error"
    return f"the upstream failed while answering: {said}"


def raise_failed_finish(choices: list[Any]) -> None:
    """Raise the failure of an answer one of whose choices the server ended with
    finish_reason "error": the whole answer failed, as an error body in its place does."""
    for choice in choices:
        if isinstance(choice, dict) and (failure := failed_finish(choice)) is not None:
            raise UpstreamError(failure, code="upstream_error")


def error_text(error: Any) -> str:
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return redact(error["message"])
    if isinstance(error, str):
        return redact(error)
    return "the upstream reported an error"


def error_message(status: int, payload: bytes) -> str:
    """The message of an error answer: its error object's, a bare `message`, else its text."""
    body = error_body(payload)
    if isinstance(body, dict) and body.get("error"):
        return error_text(body["error"])
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return redact(body["message"])
    text = page_text(payload)
    return text if text else f"the upstream answered HTTP {status}"


def error_fields(payload: bytes) -> tuple[str | None, str | None]:
    """OpenAI's `code` and `param` of the error object, when they are short plain words
    (a number, as OpenRouter's status, or anything else is no code: None)."""
    body = error_body(payload)
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, None
    code, param = error.get("code"), error.get("param")
    if not isinstance(code, str) or not _ERROR_CODE_RE.fullmatch(redact(code)):
        code = None
    return code, param if _plain_param(param) else None


def wants_payment(status: int, message: str) -> bool:
    """402, OpenAI's 429 insufficient_quota ("You exceeded your current quota, please
    check your plan and billing details") or billing_not_active ("Your account is not
    active"), or OpenRouter's 403 for a key past its own credit limit: retrying with the same
    key or waiting does not help."""
    if status == 403:
        return _KEY_LIMIT_RE.search(message) is not None
    return status == 402 or (status == 429 and bool(_QUOTA_RE.search(message)))
