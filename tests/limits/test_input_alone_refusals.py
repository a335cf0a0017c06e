"""The 402 of a request whose input alone holds more than is left of the credit or of its key's
cap, on a real box: told so, with both figures, and what helps (a shorter conversation, naming
how Claude Code and Codex start one, add credit, raise the key's limit or wait for its reset),
not to lower max_tokens, which cannot help it. A request whose output is what does not fit is
still told to lower its output cap."""

from __future__ import annotations

import httpx
import pytest

from tests.clock import clear_of_midnight
from tests.fakes.openai_upstream import FakeOpenAI
from tests.gateway.conftest import Box, BoxFactory
from tests.limits.test_key_limits import new_key
from tests.support import TLS

pytestmark = pytest.mark.timeout(120)
WORDY = "fake/wordy"  # $10 per 1M tokens in and out: a long prompt costs as its output would
LONG = "word " * 1000  # 5,000 bytes: held as about 6,100 input tokens, about $0.061
SHORT_OUTPUT = 100  # $0.001 of output: the input alone does not fit $0.03


@pytest.fixture(scope="module")
def box(box_factory: BoxFactory) -> Box:
    started = box_factory()
    started.cli("models", "set", WORDY, "--input-per-1m", "10", "--output-per-1m", "10",
                "--provider", "fake")  # fmt: skip
    started.until_served(WORDY)
    return started


def chat(box: Box, key: str, text: str = LONG, cap: int = SHORT_OUTPUT) -> httpx.Response:
    body = {"model": WORDY, "messages": [{"role": "user", "content": text}], "max_tokens": cap}
    return box.http(key).post("/v1/chat/completions", json=body)


def messages(box: Box, key: str) -> httpx.Response:
    body = {"model": WORDY, "messages": [{"role": "user", "content": LONG}],
            "max_tokens": SHORT_OUTPUT}  # fmt: skip
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    return httpx.post(box.url + "/v1/messages", json=body, headers=headers, timeout=30, verify=TLS)


def responses(box: Box, key: str) -> httpx.Response:
    body = {"model": WORDY, "input": LONG, "max_output_tokens": SHORT_OUTPUT}
    return box.http(key).post("/v1/responses", json=body)


def told(answer: httpx.Response) -> str:
    assert answer.status_code == 402, answer.text
    return str(answer.json()["error"]["message"])


def test_credit_short_of_the_input_alone_is_told_so_and_what_helps(
    box: Box, fake: FakeOpenAI
) -> None:
    _, key = box.new_user("0.03")
    said = {told(chat(box, key)): "", told(messages(box, key)): " (Claude Code: /clear",
            told(responses(box, key)): " (Codex: /new"}  # fmt: skip
    assert len(said) == 3, said
    for message, client in said.items():
        assert "max_tokens" not in message and "max_output_tokens" not in message, message
        assert message.startswith("insufficient credit: this request's input alone holds $0.06")
        assert "more than the $0.03 of credit left" in message, message
        assert f"send a shorter conversation{client}" in message, message
        assert message.endswith("or add credit"), message
    assert fake.requests == []


def test_a_key_cap_short_of_the_input_alone_is_told_so_and_what_helps(
    box: Box, fake: FakeOpenAI
) -> None:
    clear_of_midnight()  # the period's figure stays the one set
    email, _ = box.new_user("50")
    key, _ = new_key(box, email, limit_usd="0.03", limit_reset="daily")
    for message in (told(chat(box, key)), told(messages(box, key)), told(responses(box, key))):
        assert "max_tokens" not in message and "max_output_tokens" not in message, message
        assert message.startswith("this request's input alone holds $0.06"), message
        assert "more than the $0.03 left of this API key's spend limit for the period" in message
        assert message.endswith("raise limit_usd or wait for the daily reset (00:00 UTC)")
    key, _ = new_key(box, email, limit_usd="0.03")  # no reset: nothing to wait for
    message = told(chat(box, key))
    assert "left of this API key's spend limit (it has no reset period;" in message, message
    assert message.endswith(": send a shorter conversation or raise limit_usd"), message


def test_a_request_whose_output_does_not_fit_is_still_told_to_lower_its_cap(
    box: Box, fake: FakeOpenAI
) -> None:
    """Its input ($0.0105 for "Hi") fits the $0.03 left; 3,000 output tokens ($0.03) do not."""
    _, key = box.new_user("0.03")
    message = told(chat(box, key, "Hi", 3000))
    assert "add credit or lower max_tokens" in message, message
    assert "input alone" not in message, message


def compacting(box: Box, key: str, text: str) -> str:
    """A chat call with Anthropic's compaction edit (to a front of Claude that passes it on)."""
    body = {"model": WORDY, "messages": [{"role": "user", "content": text}],
            "max_tokens": SHORT_OUTPUT,
            "context_management": {"edits": [{"type": "compact_20260112"}]}}  # fmt: skip
    return told(box.http(key).post("/v1/chat/completions", json=body))


def test_compaction_passes_past_what_is_left_are_not_called_the_input(
    box: Box, fake: FakeOpenAI
) -> None:
    """A compaction edit holds a context window's pass ($2 at 200,000 tokens), whatever the
    conversation's length: "Hi" with $0.50 left is not told its input alone holds $2.01, nor to
    send a shorter conversation (which holds the same), but what the passes hold; with more
    left than the passes hold, a shorter conversation still helps."""
    _, key = box.new_user("0.5")
    message = compacting(box, key, "Hi")
    assert "input alone" not in message and "shorter" not in message, message
    assert "$2.00 of it for the compaction or advisor passes" in message, message
    assert message.endswith("more than the $0.50 of credit left (its balance, less what its "
                            "requests in flight hold): add credit"), message  # fmt: skip
    _, key = box.new_user("2.5")
    message = compacting(box, key, LONG * 10)
    assert "before any output ($2.00 of it for the compaction" in message, message
    assert message.endswith(": send a shorter conversation or add credit"), message
    assert fake.requests == []
