"""The upstream dialects, below both the catalog and the request path: provider adapters by
kind (pure translation between the OpenAI chat format and an upstream, no I/O) and the body
fields that bill beyond the token prices."""

from __future__ import annotations

from functools import cache

from codelace_box.errors import InvalidRequest
from codelace_box.providers.base import ProviderAdapter

PROVIDER_KINDS = ("openai", "anthropic")


@cache
def adapter_for(kind: str) -> ProviderAdapter:
    """The adapter of a provider kind (created once per process)."""
    if kind == "openai":
        from codelace_box.providers.openai import OpenAIAdapter

        return OpenAIAdapter()
    if kind == "anthropic":
        from codelace_box.providers.anthropic import AnthropicAdapter

        return AnthropicAdapter()
    raise InvalidRequest(f"unknown provider kind {kind!r} (known: {', '.join(PROVIDER_KINDS)})")
