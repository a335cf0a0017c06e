"""Calling the upstream: key rotation, retries before any byte reached the client, errors.

One call tries the provider's keys round robin. Connect errors, 429, 5xx (Anthropic's 529
included) and 402 (the operator's account at the provider cannot pay; another key may be another
account's) move on to the next key, at most `max_retries` times, never back to one that answered
a 429 or out-of-credit (no other key: that is the answer). A 401, or a 403 whose error blames
the key (its type, code or message speaks of the key, authentication or permission), or a 400
saying the key is not valid (gateway/key_blame.py), is confirmed by probing the key
(catalog/keyprobe.py): refused again, the key is flagged and leaves the rotation, and that
attempt does not use up a retry (the rotation shrinks); the probe working, the key stays and the
next key is tried as for a 5xx (with no other key in rotation its refusal is the answer: the
same key would be refused again), until a second such refusal parks it (gateway/blind_keys.py).
A 403 that is an HTML page (a firewall or proxy in front of the provider), whatever its words,
or a 404, 405 or 410 page (a web server where the API should be: a wrong base URL), is the
provider unavailable: 503, tried on the next key as a 5xx; so are OpenAI's
unsupported_country_region_territory and model refused to the project (model_not_found), and
a 404 saying the model does not exist upstream, not tried again (gateway/forbidden.py). Any
other 403 is a
refusal of the request's content (OpenRouter's moderation): 400 `content_refused`, no key
touched or tried. The client finally sees: the upstream's own 4xx status and message, 429 with
Retry-After (a malformed one counts as absent), 502 for 5xx and unreachable upstreams, 503 when
no key is left, the provider wants paying (402 is the user's own balance) or is overloaded
(Anthropic's 529, or a 503 that says so, on the last key tried: OpenAI's status for it, with
the upstream's Retry-After: gateway/server_failure.py), 504 for timeouts.

A 400 (or Mistral's 422 extra_forbidden) that says the model takes no `reasoning_effort` at all,
to a call whose translation added that field (Messages or Responses to an `openai` provider:
Claude Code and Codex always ask for reasoning), is tried once more without it: a model that
does not reason (gpt-4o, gpt-4.1, an Ollama model without thinking) then answers as if it had
not been asked. That attempt is not a retry; the hold is the same, and a 400 is not billed
upstream. A client's own `reasoning_effort` (/v1/chat/completions) is theirs: its 400 is
relayed. Hints a translation passed on (`prompt_cache_key`, `safety_identifier`:
gateway/hints.py), and the `stream_options` the box adds to ask a stream's usage, that the
upstream refuses as unknown fields go the same way, and the provider is not sent them again for
a while; so do an `anthropic` upstream's refusals of structured outputs' `output_config` or
`output_format` (gateway/refused_output.py). A translated compaction the model refuses as past
its context window is asked again shorter (gateway/compaction_retry.py).
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from codelace_box import metrics
from codelace_box.catalog.keyprobe import KeyProber
from codelace_box.crypto import mask_in
from codelace_box.errors import (
    CodelaceError,
    RateLimited,
    ServiceUnavailable,
    UpstreamError,
    UpstreamTimeout,
)
from codelace_box.gateway.blind_keys import key_left_rotation
from codelace_box.gateway.body_work import off_loop, written_request
from codelace_box.gateway.call_hints import (
    leave_out_refused_hints,
    offer_stream_usage,
    remember_refused_hints,
    without_hints,
)
from codelace_box.gateway.client import (
    MAX_ERROR_BODY,
    UpstreamClient,
    UpstreamConnectTimeout,
    UpstreamReadTimeout,
    UpstreamResponse,
    UpstreamUnreachable,
)
from codelace_box.gateway.compaction_retry import trim_refused_compaction
from codelace_box.gateway.forbidden import ContentRefused, not_the_key
from codelace_box.gateway.held_keys import hold_back, next_key_to_try, retries_spent
from codelace_box.gateway.hints import STREAM_OPTIONS, refused_hints
from codelace_box.gateway.key_blame import refuses_key
from codelace_box.gateway.outcome import UpstreamWentSilent
from codelace_box.gateway.refused_output import drop_refused_output, leave_out_refused_output
from codelace_box.gateway.request import ChatCall
from codelace_box.gateway.responses import in_client_terms, refusal_code
from codelace_box.gateway.retry_after import google_retry_delay, sooner, upstream_wait_sec
from codelace_box.gateway.routing import KeySlot, RouteTable
from codelace_box.gateway.server_failure import server_failure
from codelace_box.providers.base import UpstreamStreamError, UpstreamTarget

log = logging.getLogger("codelace_box.gateway")
# A model that takes no reasoning_effort at all, as OpenAI says it ("Unsupported parameter:
# 'reasoning_effort' is not supported with this model."; earlier, and Azure: "Unrecognized
# request argument supplied: reasoning_effort"), Groq ("reasoning_effort is not supported
# with this model") and Ollama, which reads it as `think` ('"llama3.1:8b" does not support
# thinking'). Not a value it refuses ("Unsupported value: 'reasoning_effort' does not support
# 'none' with this model"): the client chose that one.
_NO_EFFORT_RE = re.compile(
    r"unrecognized request argument supplied: reasoning_effort\b|"
    r"['`]?reasoning_effort['`]? is not supported with this model|"
    r"\bdoes not support thinking\b",
    re.IGNORECASE,
)
# pydantic's refusal of a field a model does not take (Mistral's 422, older vLLM's 400)
_EXTRA_FIELD_RE = re.compile(
    r"(extra_forbidden|extra inputs are not permitted).*\breasoning_effort\b|"
    r"\breasoning_effort\b.*(extra_forbidden|extra inputs are not permitted)",
    re.IGNORECASE | re.DOTALL,
)


class UpstreamRejected(CodelaceError):
    """The upstream refused the request (4xx): relayed with its status and message (and OpenAI's
    code and param, when the adapter recognises the refusal). An `openai` upstream's own code
    and param (`relayed`) are the client's, as OpenAI SDK users act on them (an agent compacts
    its history on context_length_exceeded); `code` stays the box's (upstream_<status>) for the
    usage row and the metrics, whose codes are a known few."""

    error_type = "invalid_request_error"
    default_code = "upstream_rejected"

    def __init__(self, status: int, message: str, known: tuple[str, str] | None = None,
                 relayed: tuple[str | None, str | None] = (None, None)) -> None:  # fmt: skip
        code, param = known or (f"upstream_{status}", relayed[1])
        super().__init__(message, code=code, param=param)
        self.status = status
        self.relayed_code = None if known else relayed[0]

    def envelope(self) -> dict[str, Any]:
        body = super().envelope()
        if self.relayed_code:
            body["error"]["code"] = self.relayed_code
        return body


@dataclass
class Opened:
    """A 200 answer from the upstream, the key that earned it, the call's retries left."""

    response: UpstreamResponse
    key: KeySlot
    retries_left: int = 0  # of those open_upstream was given (a stream's retry takes one)
    failed: CodelaceError | None = None  # the last failure of the attempts before (its wait)

    def without_key(self, exc: BaseException) -> BaseException:
        """`exc` with the key masked out of its message: an error inside a 200 answer (a
        stream's error event, an `error` object in a body) may echo it, as an error status
        may (`_failure`), and its message reaches the client, the log and the usage row."""
        if isinstance(exc, CodelaceError | UpstreamStreamError):
            exc.message = mask_in(exc.message, self.key.secret)
            exc.args = (exc.message,)
        return exc


class ProviderKeyRejected(ServiceUnavailable):
    """The upstream refused the operator's key (401/403): 503 to the client, key flagged."""

    def __init__(self, provider: str, status: int, message: str) -> None:
        super().__init__(
            f"{provider} refused the operator's key (HTTP {status}): {message}",
            code="provider_key_rejected",
        )
        self.key_failure_reason = f"HTTP {status}: {message}"


class ProviderOutOfCredit(ServiceUnavailable):
    """The provider wants paying by the operator (402, or the adapter's own sign of it): 503 to
    the client, never the 402 that means the user's balance."""

    def __init__(self, provider: str, status: int, message: str) -> None:
        super().__init__(
            f"{provider} refused the call: the operator's account there is out of credit "
            f"(HTTP {status}): {message}",
            code="provider_out_of_credit",
        )


class UpstreamRedirected(UpstreamError):
    """The upstream answered with a redirect: never followed (it would take the request and
    the operator's key elsewhere), never retried; 502, naming its host (no user or password)."""

    def __init__(self, provider: str, status: int, location: str | None) -> None:
        where = urlsplit(location or "")
        target = f" to {where.scheme}://{where.netloc.rpartition('@')[2]}" if where.netloc else ""
        super().__init__(
            f"{provider} answered with a redirect (HTTP {status}{target}), which the box does "
            "not follow: set the provider's base URL to the address it points to",
            code="upstream_redirect",
        )


async def _failure(call: ChatCall, response: UpstreamResponse, key: KeySlot) -> CodelaceError:
    """The error to report for a non-200 upstream answer (its body is read and closed); the
    key, should the upstream echo it, is masked out of the message."""
    try:
        payload = await response.read(MAX_ERROR_BODY)
    except Exception:  # the status alone still tells what happened
        payload = b""
    finally:
        response.close()
    return failure_of(call, response, response.status, payload, key)


def failure_of(
    call: ChatCall, response: UpstreamResponse, status: int, payload: bytes, key: KeySlot
) -> CodelaceError:
    """The error an error answer means, by its `status` (or the one a stream's first error
    event stands for: gateway/stream_start.py) and its body; the key masked out."""
    message = mask_in(call.adapter.error_message(status, payload), key.secret)
    kind = response.header("content-type")  # a 403 whatever its words (a firewall's page)
    error = not_the_key(call.route.provider.name, status, kind, payload, key.secret)
    error = error or _judged(call, response, status, message, payload, key)
    error.from_upstream = True  # not the box's own refusal (api/observe.py counts those)
    return error


def _judged(call: ChatCall, response: UpstreamResponse, status: int, message: str,
            payload: bytes, key: KeySlot) -> CodelaceError:  # fmt: skip
    """The error an error answer means, by its status and words (`message`, masked)."""
    name = call.route.provider.name
    # OpenAI's 429 insufficient_quota wants paying; Gemini's words it so too, and its body
    # says when the limit passes (a per-minute quota): that one is a 429
    passes = google_retry_delay(payload) if status == 429 else None
    if passes is None and call.adapter.wants_payment(status, message):
        return ProviderOutOfCredit(name, status, message)
    if status == 429:
        wait = upstream_wait_sec(response.header("retry-after"), response.header("retry-after-ms"))
        return RateLimited(f"{name} is rate limiting: {message}", max(wait, passes or 0))
    if status >= 500 or status < 400:  # a redirect or another non-error: not an answer either
        return server_failure(name, response, status, message, payload)
    if refuses_key(status, payload, message):  # (gateway/key_blame.py: 401, 403, some 400s)
        return ProviderKeyRejected(name, status, message)
    if status == 403:
        return ContentRefused(name, status, message)
    code, param = call.adapter.error_fields(payload)
    secret = key.secret.strip()
    if secret and secret in f"{code} {param}":  # an upstream that echoes the key
        code = param = None
    relayed = (code, in_client_terms(call, param) if param else None)
    return UpstreamRejected(status, message, refusal_code(call, status, message), relayed)


def refuses_effort(error: CodelaceError) -> bool:
    """Whether an upstream's refusal says the model takes no `reasoning_effort` at all."""
    if not isinstance(error, UpstreamRejected) or error.status not in (400, 422):
        return False
    if error.status == 400 and _NO_EFFORT_RE.search(error.message) is not None:
        return True
    return _EXTRA_FIELD_RE.search(error.message) is not None


def _drop_added_effort(call: ChatCall, error: CodelaceError) -> bool:
    """Take out the `reasoning_effort` the box's translation added, once, when the upstream
    refuses it (the next attempt goes without it); False when the refusal is another."""
    if not call.effort_added or not refuses_effort(error):
        return False
    call.effort_added = False
    call.body = call.adapter.without_effort(call.body)
    log.info(
        "%s: %s takes no reasoning_effort; asking again without it",
        *(call.route.provider.name, call.route.upstream_model),
    )
    return True


def _drop_refused_hints(call: ChatCall, error: CodelaceError) -> bool:
    """Take out the hints the upstream refused as unknown fields (remembered once it took the
    call without them: `remember_refused_hints`); False when the refusal names none."""
    if not call.hints or not isinstance(error, UpstreamRejected):
        return False
    names = refused_hints(error.status, error.message, call.hints)
    if not names:
        return False
    call.hints_refused = call.hints_refused | names
    without_hints(call, names)
    log.info("%s refuses %s; asking again without", call.route.provider.name,
             ", ".join(sorted(names)))  # fmt: skip
    return True


async def _judge(
    prober: KeyProber, routes: RouteTable, call: ChatCall, key: KeySlot, response: UpstreamResponse
) -> tuple[CodelaceError, bool]:
    """The error of a non-200 answer and whether the next attempt is free (its key was flagged,
    or the request lost the reasoning_effort, a hint the box added or a compaction's oldest
    turns); raises the error when another key would not do better (the request is at fault)."""
    if 300 <= response.status < 400:  # another key would be sent there too: not retried
        response.close()
        raise UpstreamRedirected(call.route.provider.name, response.status,
                                 response.header("location"))  # fmt: skip
    error = await _failure(call, response, key)
    return error, await judge_failure(prober, routes, call, key, error, response.status)


async def judge_failure(prober: KeyProber, routes: RouteTable, call: ChatCall, key: KeySlot,
                        error: CodelaceError, status: int) -> bool:  # fmt: skip
    """As `_judge`, for the error of an answer with `status` (a stream's first error event's)."""
    if (
        _drop_added_effort(call, error)
        or _drop_refused_hints(call, error)
        or drop_refused_output(call, error, status)
        or trim_refused_compaction(call, error)
    ):
        return True
    if isinstance(error, ProviderKeyRejected):
        if await key_left_rotation(prober, routes, call, key, error):
            return True
        if not routes.has_other_key(call.route.provider.id, key.id):
            raise error  # the same key again would be refused again
    if isinstance(error, RateLimited | ProviderOutOfCredit):  # the same key answers the same
        hold_back(call, key.id, error)  # (for a while): never again by this call
    if isinstance(error, ProviderOutOfCredit):
        log.warning(
            "%s key %d: the provider wants paying (HTTP %d)",
            *(call.route.provider.name, key.id, status),
        )
    elif not isinstance(error, ProviderKeyRejected | RateLimited | UpstreamError):
        raise error
    return False


def _target(call: ChatCall, key: KeySlot) -> UpstreamTarget:
    """Where and how the call goes with this key."""
    return UpstreamTarget(
        call.route.upstream_model, key.secret, call.route.provider.base_url, call.stream,
        call.output_cap, stream_usage=STREAM_OPTIONS in call.hints,
        refused_fields=call.refused_fields,
    )  # fmt: skip


async def _send(
    client: UpstreamClient, call: ChatCall, request: Any, sent: float
) -> UpstreamResponse | CodelaceError:
    """One attempt: the upstream's answer (its first byte timed), or the error a connection
    that failed is (a retry may follow); an upstream gone silent ends the call."""
    provider = call.route.provider.name
    try:
        response = await client.send(request)
    except UpstreamConnectTimeout as exc:
        return UpstreamTimeout(f"{provider}: {exc}", code="upstream_timeout")
    except UpstreamUnreachable as exc:
        return UpstreamError(f"{provider}: {exc}", code="upstream_unreachable")
    except UpstreamReadTimeout as exc:
        raise UpstreamWentSilent(f"{provider}: {exc}") from None
    metrics.first_byte(provider).observe(time.perf_counter() - sent)
    return response


def _shape_for_provider(routes: RouteTable, call: ChatCall) -> None:
    """Before the first attempt: a stream's usage asked for, and what the provider refused
    lately (hints, output fields) left out."""
    offer_stream_usage(call)
    leave_out_refused_hints(routes, call)
    leave_out_refused_output(routes, call)


async def open_upstream(
    client: UpstreamClient,
    routes: RouteTable,
    call: ChatCall,
    max_retries: int,
    prober: KeyProber,
    tried: set[int] | None = None,
) -> Opened:
    """POST the call upstream until a 200 answer, or raise the error the client should see;
    `tried`: the keys this call tried already (a stream's earlier attempts), added to."""
    retries_left = max_retries
    last: CodelaceError | None = None
    _shape_for_provider(routes, call)
    tried = set() if tried is None else tried  # a retry goes to another key, whatever turns
    while True:
        key = next_key_to_try(routes, call, tried, last)
        if call.off_loop:  # a large body: written on a thread (body_work.py)
            request = await off_loop(written_request, call.adapter, call.body, _target(call, key))
        else:
            request = call.adapter.build_request(call.body, _target(call, key))
        sent = time.perf_counter()
        try:
            answer = await _send(client, call, request, sent)
            if isinstance(answer, CodelaceError):
                last = answer
            elif answer.status == 200:
                prober.answered(key.id)
                remember_refused_hints(routes, call)
                return Opened(answer, key, retries_left, last)
            else:
                error, free = await _judge(prober, routes, call, key, answer)
                last = sooner(last, error)  # every key limited: the first to be free again
                if free and not call.left:  # the rotation shrank, or the request changed:
                    continue  # the next is no retry
        finally:  # every attempt's wait is the upstream's, failed ones too (not the box's own)
            call.upstream_sec += time.perf_counter() - sent
        if retries_left <= 0 or call.left:  # no new work for a client that left
            raise retries_spent(call, last)
        retries_left -= 1
