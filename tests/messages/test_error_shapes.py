"""Errors on the Messages API: Anthropic's shape on exactly its two routes
(`{"type": "error", "error": {"type", "message"}}`, the box's statuses), the OpenAI envelope on
every other path, those under /v1/messages that are no route too."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.fakes.anthropic_upstream import Reply as AnthropicReply
from tests.fakes.openai_upstream import Reply
from tests.messages.conftest import MODEL, OPENAI_ALIAS, MessagesBox
from tests.messages.test_passthrough import post
from tests.support import TLS


@pytest.mark.parametrize(
    ("body", "status", "kind"),
    [
        ({"model": "nobody/none", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]},
         404, "not_found_error"),
        ({"model": "claude-unknown-9", "max_tokens": 5,
          "messages": [{"role": "user", "content": "x"}]}, 404, "not_found_error"),
        ({"model": MODEL, "messages": [{"role": "user", "content": "x"}]},
         400, "invalid_request_error"),
        ({"model": MODEL, "max_tokens": 5, "messages": []}, 400, "invalid_request_error"),
        ("not an object", 400, "invalid_request_error"),
    ],
)  # fmt: skip
def test_refusals_have_anthropics_shape_and_never_reach_the_upstream(
    fresh: MessagesBox, body: object, status: int, kind: str
) -> None:
    _, key = fresh.new_key()
    answer = post(fresh, key, body)
    assert answer.status_code == status
    payload = answer.json()
    assert payload["type"] == "error" and payload["error"]["type"] == kind
    assert payload["error"]["message"]
    assert fresh.fake.requests == []


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages/batches",
                                  "/v1/messages/count_tokens/x", "/v1/messagesx"])  # fmt: skip
def test_other_routes_keep_the_openai_envelope(fresh: MessagesBox, path: str) -> None:
    """Only /v1/messages and /v1/messages/count_tokens answer in Anthropic's shape; a path
    under them that is no route (Anthropic's batches API, which the box does not serve) is
    another route, with the OpenAI envelope."""
    _, key = fresh.new_key()
    answer = httpx.post(f"{fresh.server.base_url}{path}", json={}, timeout=10,
                        headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
                        verify=TLS)  # fmt: skip
    assert answer.status_code in (401, 404) and answer.json()["error"]["code"]
    assert "type" not in answer.json()


@pytest.mark.parametrize("method", ["GET", "PUT"])
@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens"])
def test_a_wrong_method_on_the_two_routes_has_anthropics_shape(
    fresh: MessagesBox, path: str, method: str
) -> None:
    answer = httpx.request(method, f"{fresh.server.base_url}{path}", timeout=10, verify=TLS)
    assert answer.status_code == 405 and "POST" in answer.headers["allow"]
    assert answer.json()["error"]["type"] == "invalid_request_error"
    assert answer.json()["type"] == "error"


@pytest.mark.parametrize(
    "message",
    [
        {"role": "assistant", "content": None, "tool_calls": ["not an object"]},
        {"role": "assistant", "content": None, "tool_calls": [{"function": "Read"}]},
        {"role": "assistant", "content": None, "tool_calls": 7},
    ],
)
def test_an_upstream_answer_out_of_its_apis_shape_is_a_502_not_a_crash(
    fresh: MessagesBox, message: dict[str, object]
) -> None:
    """A chat completion the translation cannot read (an OpenAI-compatible server's bug) is
    the upstream's failure: 502 in Anthropic's shape, nothing charged, the hold released."""
    email, key = fresh.new_key()
    start = fresh.balance_nanos(email)
    usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    completion = {"id": "c1", "object": "chat.completion", "created": 1, "model": "m",
                  "choices": [{"index": 0, "finish_reason": "tool_calls", "message": message}],
                  "usage": usage}  # fmt: skip
    fresh.openai_fake.push(
        Reply(raw=[json.dumps(completion).encode()], content_type="application/json")
    )
    answer = post(fresh, key, {"model": OPENAI_ALIAS, "max_tokens": 50,
                               "messages": [{"role": "user", "content": "read a"}]})  # fmt: skip
    assert answer.status_code == 502, answer.text
    assert answer.json()["type"] == "error" and answer.json()["error"]["type"] == "api_error"
    assert fresh.balance_nanos(email) == start
    assert [row["status"] for row in fresh.usage_rows(email)] in ([], ["error"])


def test_final_refusals_say_no_retry_and_passing_ones_do_not(fresh: MessagesBox) -> None:
    """Anthropic's `x-should-retry: false` on a refusal a retry cannot change (Claude Code
    retries a 401 for minutes without it); never on a 429 or an upstream failure, which a later
    try may pass."""
    _, key = fresh.new_key()
    body = {"model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    refused = post(fresh, "sk-not-a-box-key", body)
    assert refused.status_code == 401 and refused.headers["x-should-retry"] == "false"
    unknown = post(fresh, key, {**body, "model": "nobody/none"})
    assert unknown.status_code == 404 and unknown.headers["x-should-retry"] == "false"
    fresh.fake.script(*[AnthropicReply.error(529, "overloaded_error", "Overloaded")] * 6)
    overloaded = post(fresh, key, body)
    assert overloaded.status_code >= 500 and "x-should-retry" not in overloaded.headers


@pytest.mark.parametrize("header", ["x-api-key", "authorization"])
def test_a_key_that_is_no_box_key_is_told_how_box_keys_look_on_either_header(
    fresh: MessagesBox, header: str
) -> None:
    """A provider's own key sent where Claude Code sends it (`x-api-key`) or as a bearer token:
    the 401 says what a box key looks like and names both headers, not only Bearer (which
    pointed a Claude Code user at the wrong header)."""
    body = {"model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    value = "sk-ant-not-a-box-key" if header == "x-api-key" else "Bearer sk-ant-not-a-box-key"
    answer = httpx.post(f"{fresh.server.base_url}/v1/messages", json=body,
                        headers={header: value}, timeout=30, verify=TLS)  # fmt: skip
    assert answer.status_code == 401
    message = answer.json()["error"]["message"]
    assert "cl_" in message and "x-api-key" in message and "Bearer" in message
    assert "sk-ant" not in message


@pytest.mark.parametrize("model", [MODEL, OPENAI_ALIAS])
def test_count_tokens_of_no_message_is_refused_as_anthropic_refuses_it(
    fresh: MessagesBox, model: str
) -> None:
    """A count of `messages: []` was 200 (an estimate of the rest) for a model the box
    translates, where Anthropic (and /v1/messages here) refuse it: a 400, whatever the model."""
    _, key = fresh.new_key()
    body = {"model": model, "messages": []}
    answer = post(fresh, key, body, path="/v1/messages/count_tokens")
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == {
        "type": "invalid_request_error",
        "message": "messages: must be a non-empty array of message objects",
    }
    assert fresh.fake.requests == [] and fresh.openai_fake.requests == []
