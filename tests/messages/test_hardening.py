"""/v1/messages against what a hostile user or a misconfigured client sends: two auth
headers, interleaved parallel tool calls from an OpenAI-compatible upstream, request fields
that would make the provider bill past the hold."""

from __future__ import annotations

import httpx
import pytest

from tests.messages.conftest import ALIAS, MessagesBox

anthropic = pytest.importorskip("anthropic", reason="the anthropic SDK (a dev dependency)")
BODY = {"model": ALIAS, "max_tokens": 10, "messages": [{"role": "user", "content": "Hi"}]}


def post(box: MessagesBox, body: object, **headers: str) -> httpx.Response:
    return httpx.post(f"{box.server.base_url}/v1/messages", json=body, headers=headers,
                      timeout=30)  # fmt: skip


def test_a_box_key_as_bearer_wins_over_a_foreign_x_api_key(fresh: MessagesBox) -> None:
    """Claude Code with ANTHROPIC_API_KEY (the user's own Anthropic key) still exported and
    ANTHROPIC_AUTH_TOKEN set to the box key sends both headers: the box key is the one."""
    _, key = fresh.new_key()
    answer = post(fresh, BODY, **{"x-api-key": "sk-ant-api03-users-own-key",
                                  "authorization": f"Bearer {key}"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert fresh.fake.requests[-1].headers["x-api-key"] != "sk-ant-api03-users-own-key"


def test_two_different_box_keys_are_refused(fresh: MessagesBox) -> None:
    _, first = fresh.new_key()
    _, second = fresh.new_key()
    answer = post(fresh, BODY, **{"x-api-key": first, "authorization": f"Bearer {second}"})
    assert answer.status_code == 401
    assert answer.json()["error"]["type"] == "authentication_error"
    assert "two different keys" in answer.json()["error"]["message"]
    assert fresh.fake.requests == []


def test_a_missing_key_names_both_of_anthropics_headers(fresh: MessagesBox) -> None:
    answer = post(fresh, BODY)
    assert answer.status_code == 401
    assert "x-api-key" in answer.json()["error"]["message"]
