"""The status an error event at a stream's start stands for, as each upstream words it
(providers/error_events.py): the status it names, else its type's or code's, else 500."""

from __future__ import annotations

import json
from typing import Any

import pytest

from codelace_box.providers.error_events import error_answer, error_event_status

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


def _failed(error: Any) -> str:
    """A native Responses stream's `response.failed` event carrying `error`."""
    response = {"id": "resp_1", "object": "response", "status": "failed", "error": error}
    return json.dumps({"type": "response.failed", "sequence_number": 0, "response": response})


RESPONSES_CASES: list[tuple[str, str, int]] = [
    ("failed rate limit", _failed({"code": "rate_limit_exceeded", "message": "x"}), 429),
    ("failed server error", _failed({"code": "server_error", "message": "x"}), 500),
    ("failed prompt", _failed({"code": "invalid_prompt", "message": "x"}), 400),
    ("failed image", _failed({"code": "invalid_image_url", "message": "x"}), 400),
    ("failed image policy", _failed({"code": "image_content_policy_violation"}), 400),
    ("failed without its error", _failed(None), 500),
    ("error event", json.dumps({"type": "error", "code": "invalid_base64_image",
                                "message": "x", "param": "input", "sequence_number": 3}), 400),
]  # fmt: skip


@pytest.mark.parametrize(("data", "status"), [c[1:] for c in RESPONSES_CASES],
                         ids=[c[0] for c in RESPONSES_CASES])  # fmt: skip
def test_a_responses_failure_stands_for_the_status_of_its_code(data: str, status: int) -> None:
    """Read as the error answer it stands for (error_answer), as gateway/stream_start.py does."""
    assert error_event_status(error_answer(data)) == status


def test_a_responses_error_event_reads_as_an_error_answer_and_others_stay_as_they_are() -> None:
    event = {"type": "error", "code": "invalid_prompt", "message": "flagged", "param": None,
             "sequence_number": 3}  # fmt: skip
    error = {"code": "invalid_prompt", "message": "flagged", "param": None}
    assert json.loads(error_answer(json.dumps(event))) == {"error": error}
    assert json.loads(error_answer(_failed(error))) == {"error": error}
    for other in CASES:  # (but the one that is a Responses error event itself)
        if other[0] == "responses api":
            continue
        data = json.dumps(other[1])
        assert error_answer(data) == data, other[0]
    assert error_answer("the KV cache is full") == "the KV cache is full"
