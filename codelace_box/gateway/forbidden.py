"""What an upstream's 403 (404, a 4xx page) means when it is not about the key (key_blame.py).

A page of HTML (its content type says so, or its body begins as one) is no API's answer: a
firewall, CDN or proxy in front of the provider (Cloudflare's "Access denied" or "Attention
Required", a WAF, a corporate proxy) turned the call away. Its words ("Access denied") say
nothing of the key and nothing of the request's content, and its markup is not for users: the
provider is unavailable from here, a 503 (`provider_unavailable`) naming the page by its title,
tried on the next key as a 5xx is (gateway/upstream.py); the key stays in rotation, unprobed.
A 404, 405 or 410 that is an HTML page is the same: a web server or proxy answered where the
provider's API should (a wrong base URL), the same 503, tried on the next key, no key blamed; a
JSON one is the API's own. A proxy's 413 page stays the request's (it is too large for the
proxy: another key would be turned away the same, a smaller request passes).
Passing as a 5xx may be, it is no final answer on the Messages routes (no `x-should-retry:
false`, which a disabled provider's 503 says): Anthropic's SDK and Claude Code retry it.
OpenAI's `unsupported_country_region_territory` ("Country, region, or territory not supported")
is the operator's deployment, not the user's content: the box runs where the provider does not
serve. A 503 (`provider_unavailable`) that says so, the key kept; not tried on another key, as
every key is sent from the same place.
OpenAI's refusal of a model to the operator's project (`model_not_found`: "Project `proj_...`
does not have access to model ...", or "You are not allowed to generate embeddings from this
model") is the operator's setup too: a 503 (`provider_unavailable`) saying the provider refused
the model to the box's account, the key kept, no other key tried; its words name the operator's
project, so they go to the server log, never to the user.
So is a 404 that says the model does not exist there (OpenAI's and Groq's `model_not_found`,
"The model `x` does not exist ..."; vLLM's "The model `x` does not exist."; Anthropic's
`not_found_error` "model: x"; Ollama's 'model "x" not found'; OpenRouter's "No endpoints found
for x."; Gemini's "models/x is not found for API version ..."): the user asked for a model the
catalog has, under an upstream name the operator chose. The same 503, saying the provider does
not serve the model to the box's account; the upstream's words (they name the operator's
upstream model) in the server log. A 404 in other words (OpenRouter's "No endpoints found that
support tool use": the request's tools) is relayed as the upstream's refusal.
Any other 403 refuses the request's content (OpenRouter's moderation): 400 `content_refused`.
Judged before the key is blamed. No I/O but that log line.
"""

from __future__ import annotations

import logging
import re

from codelace_box.crypto import mask_in
from codelace_box.errors import CodelaceError, InvalidRequest, ServiceUnavailable, UpstreamError
from codelace_box.providers.openai_errors import error_body, page_title, reported_error

_HTML_TYPES = ("text/html", "application/xhtml+xml")
_HTML_STARTS = (b"<!doctype html", b"<html")
_PAGE_STATUSES = frozenset({403, 404, 405, 410})  # whose HTML page is no API's answer
_UNSUPPORTED_REGION = "unsupported_country_region_territory"  # OpenAI's code for it
_NO_MODEL_CODE = "model_not_found"  # OpenAI's code of a model the project may not use
# OpenAI's own words only ("... does not have access to model `x`", "not allowed to sample /
# generate embeddings from this model"): a moderation's "not allowed to ask this model about
# ..." refuses the user's content, not the operator's account
_NO_MODEL_RE = re.compile(
    r"(does not|doesn't) have access to model\b|not allowed to (sample|generate [\w ]{1,30}?) "
    r"from this model\b",
    re.IGNORECASE,
)
# A 404's words for a model the upstream does not have, each whole (an upstream's own, not a
# proxy's): OpenAI's, Groq's and vLLM's; Anthropic's; Ollama's; OpenRouter's; Gemini's
_MISSING_MODEL_RE = re.compile(
    r"the model `[^`]+` does not exist\b.*|model: \S+|model ['\"][^'\"]+['\"] not found\b.*|"
    r"no endpoints found for (this model|[\w./:-]+)\.?|models/\S+ is not found for api version\b.*",
    re.IGNORECASE | re.DOTALL,
)
log = logging.getLogger("codelace_box.gateway")


class ContentRefused(InvalidRequest):
    """The upstream refused what the request asks (a 403 not about the key): 400 to the user."""

    def __init__(self, provider: str, status: int, message: str) -> None:
        super().__init__(
            f"{provider} refused the request (HTTP {status}): {message}", code="content_refused"
        )


class ProviderWalled(UpstreamError):
    """A 403 (404, 405, 410) HTML page from what stands in front of the provider: 503, tried on
    the next key as a 5xx is (an UpstreamError), no key blamed."""

    status = 503
    default_code = "provider_unavailable"
    passing = True  # not final as a disabled provider is: the client may retry (api/errors.py)
    upstream_status: int  # the page's own (count_tokens reads a 404 as no such route)

    def __init__(self, provider: str, status: int, title: str) -> None:
        named = f" ({title})" if title else ""
        said = (
            "a firewall or proxy in front of it turned the call away"
            if status == 403
            else "a web server or proxy answered in its place (is its base URL right?)"
        )
        super().__init__(
            f"{provider} is unavailable: {said} (HTTP {status}, an HTML page{named}, not the "
            "provider's API answering)"
        )
        self.upstream_status = status


class ProviderRegionRefused(ServiceUnavailable):
    """The provider does not serve where the box runs: 503, the key kept, no other key tried
    (a ServiceUnavailable: gateway/upstream.py)."""

    def __init__(self, provider: str, status: int) -> None:
        super().__init__(
            f"{provider} is unavailable: it does not serve the country, region or territory "
            f"this gateway runs in (HTTP {status} {_UNSUPPORTED_REGION}); the operator has to "
            "reach it from a supported one",
            code="provider_unavailable",
        )


class ProviderModelRefused(ServiceUnavailable):
    """The provider does not let the operator's account use the model: 503, the key kept, no
    other key tried; the upstream's words (the operator's project id) are not in it."""

    def __init__(self, provider: str, status: int) -> None:
        said = "refused this model to" if status == 403 else "does not serve this model to"
        super().__init__(
            f"{provider} {said} the gateway's account there (HTTP {status}): the operator has "
            "to give that account access to it, or choose another model",
            code="provider_unavailable",
        )


def refused_model(payload: bytes) -> str | None:
    """The words of an error body that refuses the model to the operator's account (OpenAI's
    `model_not_found` 403, or its words), if it is one."""
    body = error_body(payload)
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None
    words = str(error.get("message") or "")
    if error.get("code") == _NO_MODEL_CODE or _NO_MODEL_RE.search(words):
        return words or _NO_MODEL_CODE
    return None


def missing_model(payload: bytes) -> str | None:
    """The words of a 404's error body that says the model does not exist upstream, if it is
    one (OpenAI's `model_not_found`, or the words of an upstream listed above)."""
    body = error_body(payload)
    error = reported_error(body) if isinstance(body, dict) else None
    words = error if isinstance(error, str) else ""
    if isinstance(error, dict):
        words = str(error.get("message") or "")
        if error.get("code") == _NO_MODEL_CODE:
            return words or _NO_MODEL_CODE
    return words if _MISSING_MODEL_RE.fullmatch(words.strip()) else None


def refuses_region(payload: bytes) -> bool:
    """Whether an error body is OpenAI's refusal of the country the call came from."""
    body = error_body(payload)
    error = body.get("error") if isinstance(body, dict) else None
    return isinstance(error, dict) and error.get("code") == _UNSUPPORTED_REGION


def is_html(content_type: str | None, payload: bytes) -> bool:
    """Whether an answer is a page of HTML: by its content type, or by how its body begins
    (a proxy's page sent as text/plain or with no type)."""
    kind = (content_type or "").split(";")[0].strip().lower()
    return kind in _HTML_TYPES or payload[:64].lstrip().lower().startswith(_HTML_STARTS)


def not_the_key(
    provider: str, status: int, content_type: str | None, payload: bytes, secret: str
) -> CodelaceError | None:
    """The error a 403 is whatever its words say of keys (a firewall's page, a country not
    served), a 404 of a model the upstream does not have, a 404/405/410 page; None for one
    whose words decide (the key's, or the request's content)."""
    if status not in _PAGE_STATUSES:
        return None
    if is_html(content_type, payload):
        return ProviderWalled(provider, status, mask_in(page_title(payload), secret))
    if status == 404:
        return _model_refused(provider, status, missing_model(payload), secret)
    if status != 403:
        return None
    if refuses_region(payload):
        return ProviderRegionRefused(provider, status)
    return _model_refused(provider, status, refused_model(payload), secret)


def _model_refused(
    provider: str, status: int, words: str | None, secret: str
) -> ProviderModelRefused | None:
    """The 503 of a model the operator's account may not use or the upstream does not have
    (its `words`, the upstream's, logged for the operator); None without such words."""
    if words is None:
        return None
    said = "refused the model to" if status == 403 else "does not serve the model to"
    log.warning(
        "%s %s the operator's account (HTTP %d): %s",
        *(provider, said, status, mask_in(words, secret)),
    )
    return ProviderModelRefused(provider, status)
