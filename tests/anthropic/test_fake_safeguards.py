"""The fake Anthropic server's safeguards (Claude Code's auto mode): `safeguards` only under its
beta, and verdicts for the answer's tool calls in `safeguard_results`, as the API answers."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.anthropic.wire import parse_sse
from tests.fakes.anthropic_upstream import FakeAnthropic, Reply, ToolUse
from tests.support import TLS

KEY = "sk-ant-test-key"
HEADERS = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
BETA = {"anthropic-beta": "claude-code-20250219,dangerous-tool-use-2026-09-03"}
ASKED = {
    "model": "claude-opus-4-6",
    "max_tokens": 64,
    "messages": [{"role": "user", "content": "Hi"}],
    "safeguards": [{"type": "dangerous_tool_use", "classifier_context": {"v": 1}}],
}
VERDICTS = [{"type": "dangerous_tool_use", "status": {
    "type": "available", "tool_uses": {"toolu_1": {"type": "evaluated", "outcome": "not_flagged"}},
}}]  # fmt: skip


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAnthropic]:
    server = FakeAnthropic(api_keys=(KEY,)).start()
    yield server
    server.stop()


def post(fake: FakeAnthropic, body: object, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(
        f"{fake.base_url}/v1/messages", json=body, headers=headers, timeout=10, verify=TLS
    )


def test_safeguards_without_their_beta_are_an_unknown_field(fake: FakeAnthropic) -> None:
    refused = post(fake, ASKED, HEADERS)
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == "safeguards: Extra inputs are not permitted"
    wrong = post(fake, {**ASKED, "safeguards": [{"type": "other"}]}, HEADERS | BETA)
    assert wrong.status_code == 400 and "safeguards.0.type" in wrong.text


def test_the_verdicts_come_in_the_message_delta_or_the_message(fake: FakeAnthropic) -> None:
    fake.script(*[Reply(text="", tool_uses=[ToolUse("toolu_1", "Bash", {"command": "ls"})])] * 2)
    events = parse_sse(post(fake, {**ASKED, "stream": True}, HEADERS | BETA).text)
    delta = next(json.loads(e.data) for e in events if e.event == "message_delta")
    assert delta["delta"]["safeguard_results"] == VERDICTS
    assert post(fake, ASKED, HEADERS | BETA).json()["safeguard_results"] == VERDICTS


def test_no_verdicts_unless_asked(fake: FakeAnthropic) -> None:
    plain = {key: value for key, value in ASKED.items() if key != "safeguards"}
    assert "safeguard_results" not in post(fake, plain, HEADERS | BETA).json()
