"""The status an error event at a stream's start stands for, as each upstream words it
(providers/error_events.py): the status it names, else its type's or code's, else 500."""

from __future__ import annotations

import json
from typing import Any

import pytest

from codelace_box.providers.error_events import error_event_status

CASES: list[tuple[str, Any, int]] = [
    ("openrouter", {"error": {"code": 429, "message": "Rate limit exceeded"}}, 429),
    ("openrouter midstream", {"error": {"code": "server_error", "message": "gone"},
                              "choices": [{"index": 0, "finish_reason": "error"}]}, 500),
    ("vllm", {"error": {"message": "bad", "type": "BadRequestError", "code": 400}}, 400),
    ("older vllm", {"object": "error", "message": "bad", "type": "BadRequestError",
                    "param": None, "code": 400}, 400),
    ("llama.cpp", {"code": 503, "message": "Loading model", "type": "unavailable_error"}, 503),
    ("a proxy relaying anthropic", {"error": {"type": "overloaded_error", "code": "529"}}, 529),
    ("anthropic rate limit", {"type": "error", "error": {"type": "rate_limit_error"}}, 429),
    ("anthropic overloaded", {"type": "error", "error": {"type": "overloaded_error"}}, 529),
    ("anthropic refusal", {"type": "error", "error": {"type": "invalid_request_error"}}, 400),
    ("anthropic other", {"type": "error", "error": {"type": "api_error"}}, 500),
    ("openai country", {"error": {"type": "request_forbidden",
                                  "code": "unsupported_country_region_territory"}}, 403),
    ("openai rate limit", {"error": {"type": "requests", "code": "rate_limit_exceeded"}}, 429),
    ("responses api", {"type": "error", "code": "server_is_overloaded", "message": "x"}, 529),
    ("a code that is no status", {"error": {"code": 200, "type": "rate_limit_error"}}, 429),
    ("a true code", {"error": {"code": True, "message": "x"}}, 500),
    ("made-up words", {"error": {"type": "proxy_error_7", "code": "oops"}}, 500),
    ("a string error", {"error": "something broke"}, 500),
    ("no object", ["error"], 500),
]  # fmt: skip


@pytest.mark.parametrize(("body", "status"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_the_status_an_error_event_stands_for(body: Any, status: int) -> None:
    assert error_event_status(json.dumps(body)) == status


def test_an_event_that_is_no_json_is_a_server_error() -> None:
    assert error_event_status("the KV cache is full") == 500
