"""OpenAI's embeddings API to an `openai` provider: the body as sent (model renamed), the
answer as received (model relabelled), billed on its `usage.prompt_tokens` (or, without it, its
`total_tokens`, the same count for an embedding). Pure: no I/O."""

from __future__ import annotations

from typing import Any

from codelace_box.errors import UpstreamError
from codelace_box.providers.base import (
    JSON,
    StreamTranslator,
    UpstreamRequest,
    UpstreamTarget,
    Usage,
)
from codelace_box.providers.openai import OpenAIAdapter, json_post, upstream_base
from codelace_box.providers.openai_errors import raise_reported_error


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _tokens(raw: Any) -> int | None:
    """`prompt_tokens`, else `total_tokens`: an embedding has no output, so the total is the
    input (some OpenAI-compatible servers report only the total). Zero is no count (LM Studio
    reports zeros for every call): an input is never empty, as a chat usage of zeros is none."""
    if not isinstance(raw, dict):
        return None
    prompt = _count(raw.get("prompt_tokens"))
    return prompt if prompt is not None else _count(raw.get("total_tokens"))


class EmbeddingsAdapter(OpenAIAdapter):
    """`POST {base}/embeddings`; errors, key checks and payment signs as for chat."""

    def build_request(self, body: JSON, target: UpstreamTarget) -> UpstreamRequest:
        """The body with the upstream's model name."""
        url = f"{upstream_base(target)}/embeddings"
        return json_post(url, target.api_key, body | {"model": target.upstream_model}, stream=False)

    def parse_response(self, payload: JSON, public_model: str) -> tuple[JSON, Usage]:
        """The list as received, its model our id; usage from `prompt_tokens` (estimated later
        when the upstream gives none)."""
        if not isinstance(payload.get("data"), list):
            raise_reported_error(payload)
            raise UpstreamError("the upstream answered without data", code="bad_upstream_reply")
        payload["model"] = public_model
        tokens = _tokens(payload.get("usage"))
        return payload, Usage(tokens or 0, 0, estimated=tokens is None)

    def usage_of(self, raw: Any) -> Usage | None:
        """The usage of an answer too large to parse whole."""
        tokens = _tokens(raw)
        return None if tokens is None else Usage(tokens, 0)

    def stream_translator(self, public_model: str) -> StreamTranslator:
        """Embeddings are never streamed."""
        raise NotImplementedError("embeddings are not streamed")
