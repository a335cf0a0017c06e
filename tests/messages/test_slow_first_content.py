"""An Anthropic stream whose content is slow to begin (a long prompt's prefill: message_start,
then only pings): the box holds its answer back only for the keep-alive interval (so that an
error event right at the start is still retried on another key, or answered with its status),
then starts the stream, so that the client, and any proxy in front of the box, is never left
without a byte for longer (Claude Code warns of a slow first byte after 30 s and aborts a
stream silent for its idle timeout; a proxy's read timeout is often 60 s). Content that still
has not begun within read_timeout_sec ends the stream with an error event, at no cost."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.anthropic_upstream import FakeAnthropic, Reply
from tests.messages.conftest import NEEDS_SDK, PROVIDER_KEY, MessagesBox
from tests.support import TLS, ServerProcess, base_sections, free_port, write_config

pytestmark = [pytest.mark.timeout(60), NEEDS_SDK]
MODEL = "slow/claude-sonnet-4-5"
KEEPALIVE_SEC = 0.3
READ_TIMEOUT_SEC = 3.0
PING = {"type": "ping"}


@pytest.fixture(scope="module")
def slow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MessagesBox]:
    fake = FakeAnthropic(api_keys=(PROVIDER_KEY,)).start()
    folder = tmp_path_factory.mktemp("slow")
    sections = base_sections(folder, free_port())
    sections["gateway"] = {"read_timeout_sec": READ_TIMEOUT_SEC}
    config = write_config(folder / "codelace.toml", sections)
    env = {"CODELACE_SSE_KEEPALIVE_SEC": str(KEEPALIVE_SEC)}
    server = ServerProcess(config, int(sections["server"]["port"]), env=env)
    box = MessagesBox(server, config, Path(sections["database"]["path"]), fake, None)  # type: ignore[arg-type]
    box.cli("migrate")
    box.cli("providers", "add", "slow", "--kind", "anthropic", "--base-url", fake.base_url,
            "--key", PROVIDER_KEY)  # fmt: skip
    box.cli("models", "set", MODEL, "--input-per-1m", "3", "--output-per-1m", "15")
    server.start()
    yield box
    server.stop()
    fake.stop()


@pytest.fixture
def fresh(slow: MessagesBox) -> MessagesBox:
    slow.fake.reset()
    return slow


def _first_byte_and_text(box: MessagesBox, key: str, path: str, body: dict) -> tuple[float, str]:
    """When the box's first byte (its headers) came (a time.monotonic()), and the whole
    stream's text."""
    headers = {"authorization": f"Bearer {key}", "anthropic-version": "2023-06-01"}
    with (
        httpx.Client(base_url=box.server.base_url, timeout=30, verify=TLS) as client,
        client.stream("POST", path, json=body, headers=headers) as answer,
    ):
        assert answer.status_code == 200
        return time.monotonic(), answer.read().decode()


@pytest.mark.parametrize("route", ["messages", "chat"])
def test_a_slow_first_token_does_not_leave_the_client_without_a_byte(
    fresh: MessagesBox, route: str
) -> None:
    email, key = fresh.new_key()
    fresh.fake.script(Reply(text="Late but here.", extra_events=[PING] * 12, delay_sec=0.15))
    messages = [{"role": "user", "content": "Hi"}]
    body = {"model": MODEL, "max_tokens": 50, "stream": True, "messages": messages}
    path = "/v1/messages" if route == "messages" else "/v1/chat/completions"
    first_at, text = _first_byte_and_text(fresh, key, path, body)
    # From the upstream's receipt of the call (the hold counts from the box's, before it): a
    # loaded machine's slow way in and admission are no wait for a first byte the box held
    first = first_at - fresh.fake.requests[0].at
    assert first < 1.2, f"the client waited {first:.2f} s for a first byte (content: ~1.9 s)"
    if route == "messages":
        data = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]
        deltas = [d["delta"] for d in data if d["type"] == "content_block_delta"]
        said = "".join(d.get("text", "") for d in deltas)
        assert text.startswith("event: message_start") and said == "Late but here."
    else:
        assert "Late but here."[:4] in text and text.rstrip().endswith("data: [DONE]")
    [row] = fresh.usage_rows(email)
    assert row["status"] == "ok" and row["cost_nanos"] > 0


def test_the_anthropic_sdk_reads_a_slow_starting_stream(fresh: MessagesBox) -> None:
    _, key = fresh.new_key()
    fresh.fake.script(Reply(text="Slow hello.", extra_events=[PING] * 8, delay_sec=0.15))
    with fresh.client(key).messages.stream(
        model=MODEL, max_tokens=50, messages=[{"role": "user", "content": "Hi"}]
    ) as stream:
        assert stream.get_final_text() == "Slow hello."


def test_an_error_right_at_the_start_is_still_an_http_error(fresh: MessagesBox) -> None:
    """Within the keep-alive interval the answer is still held back: an error event there is
    the error status it means (here, on the only key: 503 overloaded)."""
    email, key = fresh.new_key()
    busy = Reply(error_before_content=True, error_type="overloaded_error", error_message="busy")
    fresh.fake.script(busy, busy, busy)
    body = {"model": MODEL, "max_tokens": 50, "stream": True,
            "messages": [{"role": "user", "content": "Hi"}]}  # fmt: skip
    answer = httpx.post(f"{fresh.server.base_url}/v1/messages", json=body, timeout=30,
                        headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
                        verify=TLS)  # fmt: skip
    assert answer.status_code == 503 and answer.json()["error"]["type"] == "overloaded_error"
    assert all(r["cost_nanos"] == 0 for r in fresh.usage_rows(email))


def test_content_that_never_begins_ends_the_started_stream_with_an_error_at_no_cost(
    fresh: MessagesBox,
) -> None:
    email, key = fresh.new_key()
    start = fresh.balance_nanos(email)
    fresh.fake.script(Reply(extra_events=[PING] * 60, delay_sec=0.15))  # content after 9 s
    body = {"model": MODEL, "max_tokens": 50, "stream": True,
            "messages": [{"role": "user", "content": "Hi"}]}  # fmt: skip
    began = time.monotonic()
    first_at, text = _first_byte_and_text(fresh, key, "/v1/messages", body)
    first = first_at - began
    # started after the keep-alive interval, not held back until the read timeout (a 504);
    # a margin for a loaded machine (1.5 s seen with three suites at once on 2 cores)
    assert first < READ_TIMEOUT_SEC - 1 and time.monotonic() - began < READ_TIMEOUT_SEC + 2
    assert "event: error" in text and "did not start its answer in time" in text, text
    assert "Hello" not in text
    [row] = fresh.usage_rows(email)
    assert (row["status"], row["cost_nanos"], row["error_code"]) == ("error", 0, "upstream_timeout")
    assert fresh.balance_nanos(email) == start


@pytest.mark.parametrize("route", ["messages", "chat"])
def test_thinking_that_began_after_the_hold_is_not_cut_while_it_thinks(
    fresh: MessagesBox, route: str
) -> None:
    """A slow prefill (the answer handed on before content began), then a thinking block whose
    text is left out (display omitted: Claude Opus 4.7 and later by default), the model
    thinking for longer than read_timeout_sec with only pings: its answer has begun (as it
    had, had the thinking started within the hold), so it is relayed to its end and charged,
    not ended as an upstream gone silent at no cost while the provider billed the thinking."""
    email, key = fresh.new_key()
    thinking = [PING] * int(READ_TIMEOUT_SEC / 0.15 + 6)  # thinks past the read timeout
    fresh.fake.script(Reply(text="Thought it through.", thinking="hidden", thinking_omitted=True,
                            extra_events=[PING] * 4, thinking_events=thinking, delay_sec=0.15,
                            output_tokens=900))  # fmt: skip
    body = {"model": MODEL, "max_tokens": 2048, "stream": True,
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "messages": [{"role": "user", "content": "Hi"}]}  # fmt: skip
    path = "/v1/messages" if route == "messages" else "/v1/chat/completions"
    _, text = _first_byte_and_text(fresh, key, path, body)
    assert "error" not in text and "Thought it through."[:4] in text, text
    [row] = fresh.usage_rows(email)
    assert (row["status"], row["output_tokens"]) == ("ok", 900)
