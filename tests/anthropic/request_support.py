"""Translating a chat body for an Anthropic upstream as the gateway does, checked by the
strict fake (pure code; shared by the request tests)."""

from __future__ import annotations

from typing import Any

import pytest

from codelace_box.errors import InvalidRequest
from codelace_box.providers import adapter_for
from codelace_box.providers.base import UpstreamTarget
from tests.fakes.anthropic_validation import request_problem

ADAPTER = adapter_for("anthropic")
HELLO = [{"role": "user", "content": "Hello"}]
TOOLS = [
    {"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}
    for name in ("get_weather", "get_time", "send_mail")
]


def build(body: dict[str, Any], *, cap: int = 8192, model: str = "claude-opus-4-6") -> Any:
    """Check then translate as the gateway does (the same output cap for both, as it is the
    one reserved); the result must pass the strict fake."""
    ADAPTER.check_request(body, model, default_max_tokens=cap)
    target = UpstreamTarget(model, "sk-ant-unit", "https://api.anthropic.com", False, cap)
    sent = ADAPTER.build_request(body, target).json_body
    assert request_problem(sent) is None, request_problem(sent)
    return sent


def refusal(body: dict[str, Any], *, cap: int = 8192, model: str = "claude-opus-4-6") -> Any:
    with pytest.raises(InvalidRequest) as caught:
        ADAPTER.check_request(body, model, default_max_tokens=cap)
    return caught.value
