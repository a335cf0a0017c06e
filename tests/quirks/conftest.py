"""Fixtures of the compatible-servers suite: a real box in front of one fake OpenAI-compatible
upstream (an `openai` provider with a base URL, as an operator adds OpenRouter, vLLM, Ollama,
Groq or DeepSeek), its model priced with a cache-read price; driven through every route with
the real openai and anthropic SDKs. The fake answers what tests/fakes/compatible_wire.py writes
in each server's own wire format."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.openai_upstream import FakeOpenAI
from tests.responses.conftest import ResponsesBox
from tests.support import ServerProcess, base_sections, free_port, write_config

MODEL = "compat/some-model"
PRICES = {"in": "2", "out": "8", "read": "0.5"}  # USD per 1M tokens
UPSTREAM_KEY = "sk-compat-upstream-key-0005"


@pytest.fixture(scope="package")
def qbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ResponsesBox]:
    anthropic_fake = FakeAnthropic(api_keys=("sk-ant-unused-0006",)).start()
    upstream = FakeOpenAI().start()
    folder = tmp_path_factory.mktemp("quirks")
    sections = base_sections(folder, free_port())
    config = write_config(folder / "codelace.toml", sections)
    server = ServerProcess(config, int(sections["server"]["port"]))
    running = ResponsesBox(server, config, Path(sections["database"]["path"]), anthropic_fake,
                           upstream)  # fmt: skip
    running.cli("migrate")
    running.cli("providers", "add", "compat", "--kind", "openai", "--base-url",
                upstream.base_url, "--key", UPSTREAM_KEY)  # fmt: skip
    running.cli("models", "set", MODEL, "--input-per-1m", PRICES["in"], "--output-per-1m",
                PRICES["out"], "--cache-read-per-1m", PRICES["read"])  # fmt: skip
    server.start()
    yield running
    server.stop()
    upstream.stop()
    anthropic_fake.stop()
    assert UPSTREAM_KEY not in server.log_text(), "the provider key reached the log"


@pytest.fixture
def box(qbox: ResponsesBox) -> ResponsesBox:
    """The box with its upstream reset (no scripted replies, no recorded requests)."""
    qbox.openai_fake.reset()
    return qbox
