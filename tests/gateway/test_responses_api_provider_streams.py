"""A provider added with `--responses-api` (OpenAI itself) gets /v1/responses natively, but chat
completions and Messages streams still go to its Chat Completions API: those must ask for the
stream's usage as a stream to any `openai` provider does, or OpenAI never reports it and the
call is charged an estimate instead of what the provider counted."""

from __future__ import annotations

import httpx
import pytest

from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.gateway.conftest import Box, BoxFactory
from tests.support import TLS

pytestmark = pytest.mark.timeout(60)
NATIVE = "oair/gpt-test"
PROMPT, COMPLETION = 77, 33  # what the provider counts: more than the body's estimate
ASK = [{"role": "user", "content": "hello there"}]


@pytest.fixture(scope="module")
def box(box_factory: BoxFactory, fake: FakeOpenAI) -> Box:
    started = box_factory()
    started.cli("providers", "add", "oair", "--kind", "openai", "--responses-api",
                "--base-url", fake.base_url, "--key", "sk-fake-key-0002")  # fmt: skip
    started.cli("models", "set", NATIVE, "--input-per-1m", "3", "--output-per-1m", "15")
    started.until_served(NATIVE)
    return started


@pytest.mark.parametrize(
    ("route", "body"),
    [
        ("/v1/chat/completions", {"messages": ASK, "stream": True}),
        ("/v1/messages", {"messages": ASK, "stream": True, "max_tokens": 200}),
    ],
)
def test_a_chat_stream_to_a_responses_api_provider_is_charged_the_providers_count(
    box: Box, fake: FakeOpenAI, route: str, body: dict[str, object]
) -> None:
    fake.default = Reply(pieces=["a", " b"], prompt_tokens=PROMPT, completion_tokens=COMPLETION)
    _, key = box.new_user("1")
    headers = {"authorization": f"Bearer {key}", "anthropic-version": "2023-06-01"}
    answer = httpx.post(f"{box.url}{route}", json={"model": NATIVE, **body}, headers=headers,
                        timeout=30, verify=TLS)  # fmt: skip
    assert answer.status_code == 200, answer.text
    sent = fake.requests[-1]
    assert sent.path == "/v1/chat/completions"
    assert sent.body.get("stream_options") == {"include_usage": True}
    row = box.settled_row(answer.headers["x-request-id"])
    assert (row["input_tokens"], row["output_tokens"], row["estimated"]) == (PROMPT, COMPLETION, 0)
