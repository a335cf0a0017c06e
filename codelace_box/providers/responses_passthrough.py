"""A Responses request to a provider that serves the Responses API itself (`--responses-api`).

The body goes as the client sent it, checked as a translated one would be (responses_native.py:
the upstream's model, `store: false`, hosted tools dropped), with `max_output_tokens` no more
than was held for; the answer comes back as the upstream's, relabelled, billed on its usage.
A stream's terminal event is given at the end (`finish`), for the dialect encoder to send once
the call is settled, with `cost_usd` in its usage. Errors, keys and payment signs: as for chat.
"""

from __future__ import annotations

from typing import Any

from codelace_box.providers.base import (
    JSON,
    StreamTranslator,
    UpstreamRequest,
    UpstreamTarget,
    Usage,
)
from codelace_box.providers.openai import OpenAIAdapter, json_post, upstream_base
from codelace_box.providers.responses_native import (
    NativeResponsesStream,
    native_body,
    native_usage,
    parse_native_response,
)


class HeldTerminalStream(NativeResponsesStream):
    """The native stream; its held-back terminal event is given by `finish()`."""

    def finish(self) -> list[JSON]:
        """`response.completed` / `.incomplete`, for the encoder to send after settlement."""
        return [self.terminal] if self.terminal is not None else []


class NativeResponses(OpenAIAdapter):
    """`POST {base}/responses` with the Responses body."""

    def build_request(self, body: JSON, target: UpstreamTarget) -> UpstreamRequest:
        """The client's body for the upstream, its output capped at what was held."""
        base = upstream_base(target)
        payload = native_body(body, upstream_model=target.upstream_model, stream=target.stream)
        given = payload.get("max_output_tokens")
        if target.default_max_tokens is not None:
            cap = given if isinstance(given, int) and given < target.default_max_tokens else None
            payload["max_output_tokens"] = cap or target.default_max_tokens
        return json_post(f"{base}/responses", target.api_key, payload, stream=target.stream)

    def parse_response(self, payload: JSON, public_model: str) -> tuple[JSON, Usage]:
        """The upstream's response, relabelled, and its usage."""
        return parse_native_response(payload, public_model)

    def usage_of(self, raw: Any) -> Usage | None:
        """The usage of an answer too large to parse whole."""
        return native_usage(raw)

    def stream_translator(self, public_model: str) -> StreamTranslator:
        """Events relayed as they come; the terminal one at the end."""
        return HeldTerminalStream(public_model)
