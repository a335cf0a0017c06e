"""A Messages call's sampling options toward an `openai` provider: `temperature`, `top_p` and
`stop_sequences` checked as Anthropic checks them (a number, a number, an array of strings),
then copied into the Chat Completions body. Unchecked, a string `stop_sequences` was dropped
(the answer ran on past it, and was charged) and a string temperature reached the upstream."""

from __future__ import annotations

from typing import Any

from codelace_box.errors import InvalidRequest
from codelace_box.providers.base import JSON


def _bad(message: str) -> InvalidRequest:
    return InvalidRequest(message, code="invalid_request")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def add_sampling(body: JSON, payload: JSON) -> None:
    """`payload` given the body's sampling options; 400 for one of the wrong type."""
    for name in ("temperature", "top_p"):
        value = body.get(name)
        if value is not None:
            if not _is_number(value):
                raise _bad(f"{name}: must be a number")
            payload[name] = value
    stops = body.get("stop_sequences")
    if stops is None:
        return
    if not isinstance(stops, list) or not all(isinstance(stop, str) for stop in stops):
        raise _bad("stop_sequences: must be an array of strings")
    if stops:
        payload["stop"] = stops
