"""An answer too large to relay (past `gateway.max_upstream_body_bytes`) is still work the
provider did and bills: a user can ask for one (many choices with `top_logprobs` make megabytes
per thousand tokens), so it must not come free.

The box reads the rest of such an answer without keeping it (at most READ_ON_FACTOR times the
limit more), holding only its last bytes, where providers write the `usage` object, and the 502
is charged the provider's count (within the hold, as always); when no usage is found there, an
estimate of the output by the bytes it took (four a token, never low), marked `estimated`
(embeddings: the input estimate alone; their answer is vectors, no output).
"""

from __future__ import annotations

import json
import re

from codelace_box.errors import UpstreamError
from codelace_box.gateway.client import UpstreamResponse, UpstreamTooLarge
from codelace_box.gateway.embeddings import EMBEDDINGS_ROUTE
from codelace_box.gateway.request import ChatCall
from codelace_box.jsonwire import NOT_JSON
from codelace_box.providers.base import ProviderAdapter, Usage
from codelace_box.providers.tally import CHARS_PER_TOKEN

READ_ON_FACTOR = 16
STREAM_ADVICE = "ask for a stream (stream: true) or a shorter answer"
# Embeddings are never streamed: a smaller answer is fewer inputs, fewer dimensions, or base64
# (about a third the bytes of floats written out).
EMBEDDINGS_ADVICE = 'send fewer inputs, ask for fewer dimensions, or use encoding_format "base64"'
_USAGE_KEY = re.compile(r'"usage"\s*:\s*')  # never matches inside a JSON string (quotes escaped)


class OversizedAnswer(UpstreamError):
    """A 200 answer too large to relay (502 `upstream_too_large`), with the usage to charge."""

    def __init__(self, cause: UpstreamTooLarge, usage: Usage, advice: str = STREAM_ADVICE) -> None:
        super().__init__(
            f"{cause}; the provider did the work and it is charged: {advice}",
            code="upstream_too_large",
        )
        self.usage = usage


def usage_in_tail(tail: bytes, adapter: ProviderAdapter) -> Usage | None:
    """The last `usage` object in the end of an answer that the adapter takes for one."""
    text = tail.decode("utf-8", "replace")
    decoder = json.JSONDecoder()
    for found in reversed(list(_USAGE_KEY.finditer(text))):
        try:
            raw, _ = decoder.raw_decode(text, found.end())
        except NOT_JSON:
            continue
        usage = adapter.usage_of(raw)
        if usage is not None:
            return usage
    return None


async def oversized(
    call: ChatCall, response: UpstreamResponse, exc: UpstreamTooLarge
) -> OversizedAnswer:
    """What to raise for an answer too large to relay: the usage to charge with the error (the
    upstream connection is closed here)."""
    budget = response.limits.max_body_bytes * READ_ON_FACTOR
    try:
        tail, more, ended = await response.read_tail(exc.tail, budget)
    except Exception:  # the upstream broke off: what was read is all there is
        tail, more, ended = exc.tail, 0, False
    finally:
        response.close()
    usage = usage_in_tail(tail, call.adapter) if ended else None
    embeddings = call.ingress == EMBEDDINGS_ROUTE
    if usage is None:  # an embedding's bytes are vectors, no output tokens
        output = 0 if embeddings else -(-(exc.read + more) // CHARS_PER_TOKEN)
        usage = Usage(call.input_guess(), output, estimated=True)
    advice = EMBEDDINGS_ADVICE if embeddings else STREAM_ADVICE
    return OversizedAnswer(exc, call.with_input(usage), advice)
