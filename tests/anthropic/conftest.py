"""Fixtures of the Anthropic suite: one fake Anthropic API and one real box wired to it.

The box is a real `codelace-box serve` process; its provider (`anth`, kind anthropic, two keys),
the model `anthropic/claude-opus-4.6`, users, credit and API keys are set up with the real CLI,
exactly as an operator would. Both live for the whole package; each test scripts the fake and
uses a fresh user.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import openai
import pytest

from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.support import (
    LedgerView,
    ServerProcess,
    base_sections,
    free_port,
    run_cli,
    sdk_http,
    usd_nanos,
    write_config,
)

MODEL = "anthropic/claude-opus-4.6"
UPSTREAM_MODEL = "claude-opus-4-6"
IN_PRICE, OUT_PRICE = "15", "75"  # USD per 1M tokens
MAX_OUTPUT = 32000
PROVIDER_KEYS = ("sk-ant-e2e-key-one-0001", "sk-ant-e2e-key-two-0002")
REVOKED_KEY = "sk-ant-e2e-revoked-0003"  # the fake answers 401 to it
ROTATION_MODEL = (
    "anthropic/claude-rotation"  # provider `anth-rot`: revoked key first, then a good one
)
ADAPTIVE_MODEL = "anthropic/claude-opus-4.7"  # upstream claude-opus-4-7: adaptive, no sampling
OLDER_MODEL = "anthropic/claude-sonnet-4"  # upstream claude-sonnet-4-20250514: both samplers
_emails = itertools.count(1)


def expected_cost_nanos(tokens_in: int, tokens_out: int) -> int:
    """The price of a call, computed independently with exact rationals (rounded up)."""
    return usd_nanos((tokens_in, IN_PRICE), (tokens_out, OUT_PRICE))


@dataclass
class AnthropicBox(LedgerView):
    """The running box, the fake upstream behind it, and helpers to drive and inspect both."""

    server: ServerProcess
    config: Path
    db_path: Path
    fake: FakeAnthropic

    def cli(self, *args: str) -> str:
        result = run_cli(self.config, *args)
        assert result.returncode == 0, f"{args}: {result.stderr}"
        return result.stdout

    def new_user(self, credit_usd: str = "20") -> tuple[str, openai.OpenAI]:
        """A fresh user with credit: (email, an OpenAI SDK client with the user's key)."""
        email = f"claude{next(_emails)}@anthropic.test"
        self.cli("users", "create", email)
        self.cli("credit", email, credit_usd, "--reason", "test credit")
        key = self.cli("keys", "create", email).strip()
        client = openai.OpenAI(
            base_url=self.server.base_url + "/v1", api_key=key, max_retries=0, timeout=30,
            http_client=sdk_http(openai),
        )  # fmt: skip
        return email, client


@pytest.fixture(scope="package")
def fake() -> Iterator[FakeAnthropic]:
    server = FakeAnthropic(api_keys=PROVIDER_KEYS).start()
    yield server
    server.stop()


@pytest.fixture(scope="package")
def box(tmp_path_factory: pytest.TempPathFactory, fake: FakeAnthropic) -> Iterator[AnthropicBox]:
    folder = tmp_path_factory.mktemp("anthropic")
    sections = base_sections(folder, free_port())
    config = write_config(folder / "codelace.toml", sections)
    db_path = Path(sections["database"]["path"])
    server = ServerProcess(config, int(sections["server"]["port"]))
    running = AnthropicBox(server, config, db_path, fake)
    running.cli("migrate")
    running.cli("providers", "add", "anth", "--kind", "anthropic", "--base-url", fake.base_url,
                "--key", PROVIDER_KEYS[0])  # fmt: skip
    running.cli("providers", "key-add", "anth", "--key", PROVIDER_KEYS[1])
    running.cli("models", "set", MODEL, "--provider", "anth", "--upstream-model", UPSTREAM_MODEL,
                "--input-per-1m", IN_PRICE, "--output-per-1m", OUT_PRICE,
                "--max-output-tokens", str(MAX_OUTPUT))  # fmt: skip
    running.cli("models", "set", ADAPTIVE_MODEL, "--provider", "anth", "--upstream-model",
                "claude-opus-4-7", "--input-per-1m", IN_PRICE, "--output-per-1m", OUT_PRICE,
                "--max-output-tokens", str(MAX_OUTPUT))  # fmt: skip
    running.cli("models", "set", OLDER_MODEL, "--provider", "anth", "--upstream-model",
                "claude-sonnet-4-20250514", "--input-per-1m", IN_PRICE, "--output-per-1m",
                OUT_PRICE)  # fmt: skip
    running.cli("providers", "add", "anth-rot", "--kind", "anthropic", "--base-url",
                fake.base_url, "--key", REVOKED_KEY)  # fmt: skip
    running.cli("providers", "key-add", "anth-rot", "--key", PROVIDER_KEYS[1])
    running.cli("models", "set", ROTATION_MODEL, "--provider", "anth-rot",
                "--input-per-1m", IN_PRICE, "--output-per-1m", OUT_PRICE)  # fmt: skip
    server.start()
    yield running
    server.stop()
    log = server.log_text()
    leaked = [key for key in (*PROVIDER_KEYS, REVOKED_KEY) if key in log]
    assert not leaked, "a provider key reached the server log"


@pytest.fixture
def fresh_fake(fake: FakeAnthropic) -> FakeAnthropic:
    """The fake with no scripted replies and no recorded requests."""
    fake.reset()
    return fake
