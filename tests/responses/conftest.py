"""Fixtures of the Responses API suite: a real box in front of a fake OpenAI and a fake
Anthropic, set up with the real CLI; the client is the real openai SDK."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.openai_upstream import FakeOpenAI
from tests.messages.conftest import MessagesBox
from tests.support import ServerProcess, base_sections, free_port, sdk_http, write_config

OPENAI_MODEL = "oai/gpt-5.4-mini"
ANTHROPIC_MODEL = "anth/claude-sonnet-4.5"
PRICES = {"in": "0.25", "out": "2"}  # USD / 1M, both models
NATIVE_MODEL = "native/gpt-5.4"  # an openai provider added with --responses-api
EMBEDDING_MODEL = "oai/text-embedding-3-small"
EMBEDDING_PRICE = "0.13"  # USD / 1M input tokens; no output price
OPENAI_KEY = "sk-openai-responses-key-0003"
ANTHROPIC_KEY = "sk-ant-responses-key-0004"


class ResponsesBox(MessagesBox):
    """The running box with an openai and an anthropic provider, and the openai SDK."""

    def openai(self, key: str, **options: Any) -> Any:
        """The openai SDK against the box (no retries: every answer is seen as it is)."""
        import openai

        return openai.OpenAI(
            base_url=f"{self.server.base_url}/v1", api_key=key, max_retries=0, timeout=30,
            http_client=sdk_http(openai), **options,
        )  # fmt: skip


@pytest.fixture(scope="package")
def rbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ResponsesBox]:
    anthropic_fake = FakeAnthropic(api_keys=(ANTHROPIC_KEY,)).start()
    openai_fake = FakeOpenAI().start()
    folder = tmp_path_factory.mktemp("responses")
    sections = base_sections(folder, free_port())
    config = write_config(folder / "codelace.toml", sections)
    server = ServerProcess(config, int(sections["server"]["port"]))
    db_path = Path(sections["database"]["path"])
    running = ResponsesBox(server, config, db_path, anthropic_fake, openai_fake)
    running.cli("migrate")
    running.cli("providers", "add", "oai", "--kind", "openai", "--base-url",
                openai_fake.base_url, "--key", OPENAI_KEY)  # fmt: skip
    running.cli("providers", "add", "anth", "--kind", "anthropic", "--base-url",
                anthropic_fake.base_url, "--key", ANTHROPIC_KEY)  # fmt: skip
    running.cli("providers", "add", "native", "--kind", "openai", "--base-url",
                openai_fake.base_url, "--key", OPENAI_KEY, "--responses-api")  # fmt: skip
    for model in (OPENAI_MODEL, ANTHROPIC_MODEL, NATIVE_MODEL):
        running.cli("models", "set", model, "--input-per-1m", PRICES["in"],
                    "--output-per-1m", PRICES["out"])  # fmt: skip
    running.cli("models", "set", EMBEDDING_MODEL, "--input-per-1m", EMBEDDING_PRICE,
                "--output-per-1m", "0")  # fmt: skip
    server.start()
    yield running
    server.stop()
    openai_fake.stop()
    anthropic_fake.stop()
    log = server.log_text()
    assert OPENAI_KEY not in log and ANTHROPIC_KEY not in log, "a provider key reached the log"


@pytest.fixture
def fresh(rbox: ResponsesBox) -> ResponsesBox:
    """The box with both fakes reset."""
    rbox.fake.reset()
    rbox.openai_fake.reset()
    return rbox
