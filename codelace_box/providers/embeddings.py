"""OpenAI's embeddings API to an `openai` provider: the body as sent (model renamed), the
answer as received (model relabelled), billed on its `usage.prompt_tokens` (or, without it, its
`total_tokens`, the same count for an embedding). A client that asked for `encoding_format:
"base64"` gets base64 even from an OpenAI-compatible upstream that ignores the field and answers
float lists: the little-endian float32 bytes, as OpenAI sends them. Pure: no I/O."""

from __future__ import annotations

import base64
import struct
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


def as_base64(vector: Any) -> Any:
    """A list of numbers as OpenAI's base64 (float32, little-endian); anything else as is."""
    if not isinstance(vector, list) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in vector
    ):
        return vector
    try:
        packed = struct.pack(f"<{len(vector)}f", *vector)
    except OverflowError:  # past float32's range: no bytes OpenAI would send for it
        return vector
    return base64.b64encode(packed).decode("ascii")


def _encode_base64(data: list[Any]) -> None:
    for item in data:
        if isinstance(item, dict) and isinstance(item.get("embedding"), list):
            item["embedding"] = as_base64(item["embedding"])


class EmbeddingsAdapter(OpenAIAdapter):
    """`POST {base}/embeddings`; errors, key checks and payment signs as for chat. With
    `to_base64`, float lists in the answer are sent on as base64 (the client asked for it)."""

    def __init__(self, to_base64: bool = False) -> None:
        super().__init__()
        self.to_base64 = to_base64

    def build_request(self, body: JSON, target: UpstreamTarget) -> UpstreamRequest:
        """The body with the upstream's model name."""
        url = f"{upstream_base(target)}/embeddings"
        return json_post(url, target.api_key, body | {"model": target.upstream_model}, stream=False)

    def parse_response(self, payload: JSON, public_model: str) -> tuple[JSON, Usage]:
        """The list as received (float lists as base64 when asked), its model our id; usage
        from `prompt_tokens` (estimated later when the upstream gives none)."""
        if not isinstance(payload.get("data"), list):
            raise_reported_error(payload)
            raise UpstreamError("the upstream answered without data", code="bad_upstream_reply")
        payload["model"] = public_model
        if self.to_base64:
            _encode_base64(payload["data"])
        tokens = _tokens(payload.get("usage"))
        return payload, Usage(tokens or 0, 0, estimated=tokens is None)

    def usage_of(self, raw: Any) -> Usage | None:
        """The usage of an answer too large to parse whole."""
        tokens = _tokens(raw)
        return None if tokens is None else Usage(tokens, 0)

    def stream_translator(self, public_model: str) -> StreamTranslator:
        """Embeddings are never streamed."""
        raise NotImplementedError("embeddings are not streamed")
