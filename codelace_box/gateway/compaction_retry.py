"""A translated compaction too long for its model, asked again shorter (no I/O).

Codex compacts remotely with a request holding the whole thread (responses_compaction.py); a
chat or Anthropic model may refuse it as past its context window, and Codex, which trims its
history only for its local compaction, then stops the session ("ran out of room"). The box asks
again, in the same call, with about the older half of the turns left out, at most
MAX_TRIMS times: the refusals are not billed upstream, the hold taken for the whole request
covers a shorter one, and the one answer is settled once with one usage row (an answer without
usage charged the estimate of the shorter request it answered, not of the whole one). The same
refusal as an error event before any content of a stream (gateway/stream_start.py) is asked
again shorter too.
"""

from __future__ import annotations

import logging

from codelace_box.errors import CodelaceError
from codelace_box.gateway.metering import input_token_estimate
from codelace_box.gateway.request import ChatCall
from codelace_box.jsonwire import dumps
from codelace_box.providers.base import UpstreamStreamError
from codelace_box.providers.messages_openai_errors import is_overflow
from codelace_box.providers.responses_compaction import trimmed_for_compaction
from codelace_box.providers.responses_request import ResponsesContext

log = logging.getLogger("codelace_box.gateway")
MAX_TRIMS = 3  # each leaves out about half of what is left: an eighth of the turns at the last
OVERFLOW = "context_length_exceeded"


def overflows(error: CodelaceError) -> bool:
    """Whether an upstream's refusal says the request does not fit the model's context window
    (OpenAI's code, the Anthropic adapter's, or the words of either)."""
    if not error.from_upstream or error.status != 400:
        return False
    relayed = getattr(error, "relayed_code", None)
    return OVERFLOW in (error.code, relayed) or is_overflow(b"", error.message)


def trim_refused_compaction(call: ChatCall, error: CodelaceError) -> bool:
    """Leave out the older turns of a translated compaction the upstream refused as too long,
    for the next attempt; False for any other call or refusal, or past MAX_TRIMS."""
    return overflows(error) and _trim(call)


def trim_compaction_refused_in_stream(call: ChatCall, error: UpstreamStreamError) -> bool:
    """As `trim_refused_compaction`, for an error event before any content of a stream the
    upstream accepted (Anthropic's `event: error`, a compatible server's error chunk): its
    words say the request is too long. Anthropic and OpenAI document that refusal as a 400,
    but a stream may carry it after the 200 (a proxy in front of them), of whatever type it
    names (vLLM's `BadRequestError`, none at all): its words decide."""
    return (error.code == OVERFLOW or is_overflow(b"", error.message)) and _trim(call)


def translated_compaction(call: ChatCall) -> bool:
    """A Responses compaction asked of a chat or Anthropic model (the box writes its item)."""
    context = call.context
    return isinstance(context, ResponsesContext) and context.compaction


def _trim(call: ChatCall) -> bool:
    """Leave out the older turns of a translated compaction, if it is one, MAX_TRIMS times."""
    if not translated_compaction(call) or call.compaction_trims >= MAX_TRIMS:
        return False
    trimmed = trimmed_for_compaction(call.body)
    if trimmed is None:
        return False
    call.body = trimmed
    call.media = None  # (the admission's walk was of the body before)
    call.input_estimate = input_token_estimate(len(dumps(trimmed)))  # what is sent now
    call.compaction_trims += 1
    log.info("%s: the compaction does not fit %s; asking again with its oldest turns left out",
             call.route.provider.name, call.route.upstream_model)  # fmt: skip
    return True
