"""Upstream error words that name the operator's account at the provider (OpenAI's 429 "in
organization org-...", a project's `proj_...`): masked in what every route relays (chat,
Messages translated and passed through, Responses native and translated, embeddings; error
statuses and stream error events) and in the usage row, the rest of the words kept."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.fakes.anthropic_upstream import Reply as AnthropicReply
from tests.fakes.openai_upstream import Reply
from tests.responses.conftest import (
    ANTHROPIC_MODEL,
    EMBEDDING_MODEL,
    NATIVE_MODEL,
    OPENAI_MODEL,
    ResponsesBox,
)
from tests.responses.test_native_failure import upstream_frames

pytestmark = pytest.mark.timeout(60)
ORG, PROJECT = "org-AbCdEf1234567890GhIjKlMn", "proj_Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2"  # OpenAI's shapes
WORDS = (
    f"Rate limit reached for gpt-4o in organization {ORG} on tokens per min (TPM): Limit "
    f"30000, Used 29000, Requested 1500. Please try again in 1.2s. Project {PROJECT}."
)
KEPT = ("Rate limit reached for gpt-4o in organization ", "Please try again in 1.2s.")
ERROR = {"message": WORDS, "type": "tokens", "param": None, "code": "rate_limit_exceeded"}


def chat_events() -> list[bytes]:
    """A chat stream: one piece of content, then OpenAI's error event."""
    choice = {"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}
    piece = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "choices": [choice]}
    return [f"data: {json.dumps(item)}\n\n".encode() for item in (piece, {"error": ERROR})]


# Every attempt (a 429 is tried again, on the one key) gets the same answer.
def status_429(box: ResponsesBox) -> None:
    box.openai_fake.default = Reply(status=429, error=dict(ERROR))


def chat_error_event(box: ResponsesBox) -> None:
    box.openai_fake.default = Reply(raw=chat_events())


def anthropic_429(box: ResponsesBox) -> None:
    box.fake.script(*[AnthropicReply.error(429, "rate_limit_error", WORDS)] * 3)


def anthropic_error_event(box: ResponsesBox) -> None:
    box.fake.script(AnthropicReply(error_after_deltas=1, error_type="rate_limit_error",
                                   error_message=WORDS))  # fmt: skip


def native_error_event(box: ResponsesBox) -> None:
    failed = {"type": "response.failed", "response": {"status": "failed", "error": ERROR}}
    box.openai_fake.default = Reply(raw=upstream_frames([failed]))


def chat(model: str, stream: bool) -> tuple[str, dict[str, Any]]:
    return "/v1/chat/completions", {"model": model, "stream": stream,
                                    "messages": [{"role": "user", "content": "Hi"}]}  # fmt: skip


def messages(model: str, stream: bool) -> tuple[str, dict[str, Any]]:
    return "/v1/messages", {"model": model, "stream": stream, "max_tokens": 100,
                            "messages": [{"role": "user", "content": "Hi"}]}  # fmt: skip


def responses(model: str, stream: bool) -> tuple[str, dict[str, Any]]:
    return "/v1/responses", {"model": model, "stream": stream, "input": "Hi"}


Push = Callable[[ResponsesBox], None]
CASES: dict[str, tuple[Push, tuple[str, dict[str, Any]]]] = {
    "chat": (status_429, chat(OPENAI_MODEL, False)),
    "chat-stream-429": (status_429, chat(OPENAI_MODEL, True)),
    "chat-stream-event": (chat_error_event, chat(OPENAI_MODEL, True)),
    "messages-translated": (status_429, messages(OPENAI_MODEL, False)),
    "messages-translated-stream-event": (chat_error_event, messages(OPENAI_MODEL, True)),
    "messages-passthrough": (anthropic_429, messages(ANTHROPIC_MODEL, False)),
    "messages-passthrough-stream-event": (anthropic_error_event, messages(ANTHROPIC_MODEL, True)),
    "responses-native": (status_429, responses(NATIVE_MODEL, False)),
    "responses-native-stream-event": (native_error_event, responses(NATIVE_MODEL, True)),
    "responses-translated": (status_429, responses(OPENAI_MODEL, False)),
    "responses-translated-stream-event": (chat_error_event, responses(OPENAI_MODEL, True)),
    "responses-to-anthropic-event": (anthropic_error_event, responses(ANTHROPIC_MODEL, True)),
    "embeddings": (status_429, ("/v1/embeddings", {"model": EMBEDDING_MODEL, "input": "Hi"})),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_operators_organization_and_project_ids_are_masked(
    fresh: ResponsesBox, case: str
) -> None:
    push, (path, body) = CASES[case]
    email, key = fresh.new_key()
    push(fresh)
    with fresh.http(key) as http:
        answer = http.post(path, json=body)
    assert answer.status_code != 200 or body.get("stream"), answer.text
    shown = answer.text
    rows = fresh.usage_rows(email)
    assert rows and rows[-1]["status"] == "error", rows
    for said in (shown, str(rows[-1]["upstream_error"])):
        assert ORG not in said and PROJECT not in said, said
        assert ORG[:7] not in said and PROJECT[:8] not in said, said
        for words in KEPT:
            assert words in said.replace("\\", ""), said


def test_words_shaped_unlike_an_id_reach_the_user_as_sent(fresh: ResponsesBox) -> None:
    """A model named `org-Llama-3B` and a project word `proj_main` (at the very end) were
    masked as if they were the operator's ids: users read a mask for their own model's name."""
    words = f"Rate limit reached for org-Llama-3B in organization {ORG}, project proj_main"
    fresh.openai_fake.default = Reply(status=429, error={**ERROR, "message": words})
    path, body = chat(OPENAI_MODEL, False)
    _, key = fresh.new_key()
    with fresh.http(key) as http:
        answer = http.post(path, json=body)
    assert answer.status_code == 429, answer.text
    said = answer.json()["error"]["message"]
    assert ORG not in said and ORG[:7] not in said, said
    assert "Rate limit reached for org-Llama-3B in organization " in said, said
    assert said.endswith(", project proj_main"), said
