"""Fixtures of the Messages API suite: a real box in front of a fake Anthropic and a fake OpenAI.

The box is a real `codelace-box serve` process set up with the real CLI: an `anthropic`
provider with a model that has prompt-cache prices and two aliases (Claude Code's default
names), and an `openai` provider whose model is reached by translation. Clients are the real
`anthropic` SDK (a dev dependency) and plain HTTP.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.support import (
    TLS,
    BoxDriver,
    LedgerView,
    ServerProcess,
    base_sections,
    free_port,
    sdk_http,
    usd_nanos,
    write_config,
)

__all__ = ["usd_nanos"]  # the suites import it from here

# The modules that drive the box with the anthropic SDK (a dev dependency) skip without it; they
# import it in the tests that name it, not at collection (1.2 s in every xdist worker).
NEEDS_SDK = pytest.mark.skipif(
    importlib.util.find_spec("anthropic") is None, reason="the anthropic SDK (a dev dependency)"
)

MODEL = "anthropic/claude-sonnet-4.5"
UPSTREAM_MODEL = "claude-sonnet-4-5"
ALIAS = "claude-sonnet-4-5-20250929"
OPENAI_MODEL = "oai/gpt-5.4-mini"
OPENAI_ALIAS = "claude-haiku-4-5"
PRICES = {"in": "3", "out": "15", "read": "0.3", "write": "3.75", "write_1h": "6"}  # USD / 1M
OPENAI_PRICES = {"in": "0.25", "out": "2", "read": "0.025"}
PROVIDER_KEY = "sk-ant-messages-key-0001"
OPENAI_KEY = "sk-openai-messages-key-0002"


def openai_chunk(delta: dict[str, Any], finish: str | None = None, usage: Any = None) -> bytes:
    """One chat.completion.chunk SSE event (a usage-only chunk when `usage` is given)."""
    choices = [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}]
    chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
             "choices": choices, **({"usage": usage} if usage else {})}  # fmt: skip
    return f"data: {json.dumps(chunk)}\n\n".encode()


def tool_call_piece(index: int, call_id: str | None = None, arguments: str = "") -> dict[str, Any]:
    """A delta with one piece of a Read tool call (its header when `call_id` is given)."""
    call: dict[str, Any] = {"index": index, "function": {"arguments": arguments}}
    if call_id:
        call |= {"id": call_id, "type": "function"}
        call["function"]["name"] = "Read"
    return {"tool_calls": [call]}


@dataclass
class MessagesBox(BoxDriver, LedgerView):
    """The running box, its fakes, and helpers to drive and inspect them."""

    server: ServerProcess
    config: Path
    db_path: Path
    fake: FakeAnthropic
    openai_fake: FakeOpenAI

    email_prefix = "msg"
    email_domain = "messages.test"

    def new_key(self, credit_usd: str = "20") -> tuple[str, str]:
        """A fresh user with credit: (email, API key)."""
        return self.new_user(credit_usd)

    def translated(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        """The Chat Completions body the OpenAI fake received for this Messages body (sent
        with plain HTTP, answered in a word)."""
        self.openai_fake.push(Reply(content="ok"))
        answer = httpx.post(f"{self.server.base_url}/v1/messages", json=body,
                            headers={"x-api-key": key}, timeout=30, verify=TLS)  # fmt: skip
        assert answer.status_code == 200, answer.text
        return self.openai_fake.requests[-1].body

    def client(self, key: str, **options: Any) -> Any:
        """The anthropic SDK against the box (no retries: every answer is seen as it is)."""
        import anthropic  # a dev dependency; the modules that use it skip without it

        return anthropic.Anthropic(
            base_url=self.server.base_url, api_key=key, max_retries=0, timeout=30,
            http_client=sdk_http(anthropic), **options,
        )  # fmt: skip


@pytest.fixture(scope="package")
def fakes() -> Iterator[tuple[FakeAnthropic, FakeOpenAI]]:
    anthropic_fake = FakeAnthropic(api_keys=(PROVIDER_KEY,)).start()
    openai_fake = FakeOpenAI().start()
    yield anthropic_fake, openai_fake
    openai_fake.stop()
    anthropic_fake.stop()


@pytest.fixture(scope="package")
def box(
    tmp_path_factory: pytest.TempPathFactory, fakes: tuple[FakeAnthropic, FakeOpenAI]
) -> Iterator[MessagesBox]:
    folder = tmp_path_factory.mktemp("messages")
    sections = base_sections(folder, free_port())
    config = write_config(folder / "codelace.toml", sections)
    server = ServerProcess(config, int(sections["server"]["port"]))
    running = MessagesBox(server, config, Path(sections["database"]["path"]), *fakes)
    running.cli("migrate")
    running.cli("providers", "add", "anth", "--kind", "anthropic", "--base-url",
                fakes[0].base_url, "--key", PROVIDER_KEY,
                "--allow-field", "context-1m")  # fmt: skip
    running.cli("models", "set", MODEL, "--provider", "anth", "--upstream-model", UPSTREAM_MODEL,
                "--input-per-1m", PRICES["in"], "--output-per-1m", PRICES["out"],
                "--cache-read-per-1m", PRICES["read"], "--cache-write-per-1m", PRICES["write"],
                "--cache-write-1h-per-1m", PRICES["write_1h"])  # fmt: skip
    running.cli("models", "alias", ALIAS, MODEL)
    running.cli("providers", "add", "oai", "--kind", "openai", "--base-url",
                fakes[1].base_url, "--key", OPENAI_KEY)  # fmt: skip
    running.cli("models", "set", OPENAI_MODEL, "--input-per-1m", OPENAI_PRICES["in"],
                "--output-per-1m", OPENAI_PRICES["out"],
                "--cache-read-per-1m", OPENAI_PRICES["read"])  # fmt: skip
    running.cli("models", "alias", OPENAI_ALIAS, OPENAI_MODEL)
    server.start()
    yield running
    server.stop()
    log = server.log_text()
    assert PROVIDER_KEY not in log and OPENAI_KEY not in log, "a provider key reached the log"


@pytest.fixture
def fresh(box: MessagesBox) -> MessagesBox:
    """The box with both fakes reset (no scripted replies, no recorded requests)."""
    box.fake.reset()
    box.openai_fake.reset()
    return box


@pytest.fixture
def fresh_advised(advised: MessagesBox) -> MessagesBox:
    """The module's `advised` box (the advisor allowed, its model in the catalog; each advisor
    module defines it) with both fakes reset."""
    advised.fake.reset()
    advised.openai_fake.reset()
    return advised


@contextmanager
def advisor_allowed(
    box: MessagesBox, model_id: str, upstream: str, prices: dict[str, str]
) -> Iterator[MessagesBox]:
    """The box with the advisor tool allowed for the Anthropic provider and `model_id` (its
    upstream name `upstream`, its five prices by kind: in, out, read, write, write_1h) in the
    catalog; both undone after (the package's box is shared)."""
    box.cli("providers", "update", "anth", "--allow-field", "advisor")
    box.cli("models", "set", model_id, "--provider", "anth", "--upstream-model", upstream,
            "--input-per-1m", prices["in"], "--output-per-1m", prices["out"],
            "--cache-read-per-1m", prices["read"], "--cache-write-per-1m", prices["write"],
            "--cache-write-1h-per-1m", prices["write_1h"])  # fmt: skip
    box.until_served(model_id)
    box.until_reloaded()
    yield box
    box.cli("models", "remove", model_id)
    box.cli("providers", "update", "anth", "--no-allow-field", "advisor")
    box.until_reloaded()
