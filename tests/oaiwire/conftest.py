"""Fixtures of the OpenAI wire-features suite: one box in front of the hostile upstream
(tests/fakes/hostile_upstream.py), which answers each call with an answer of OpenAI's reference
(tests/fakes/openai_wire.py), serving as two `openai` providers: one the box translates to Chat
Completions (`chat`), one added with `--responses-api` (`native`). The models have GPT-5.6's
prompt-cache prices (reads at a tenth of the input price, writes at 1.25 times it)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.hostile_upstream import (  # hostile, _fresh_hostile: the suite's fixtures
    HostileUpstream,
    _fresh_hostile,  # noqa: F401
    hostile,  # noqa: F401
)
from tests.support import (
    BoxDriver,
    LedgerView,
    MetricsView,
    ServerProcess,
    base_sections,
    free_port,
    usd_nanos,
    write_config,
)

CHAT_MODEL = "wire/gpt-5.6-terra"  # an openai provider: Responses translated to chat
NATIVE_MODEL = "native/gpt-5.6-terra"  # an openai provider added with --responses-api
OPEN_MODEL = "open/gpt-5.6-terra"  # an openai provider whose server tools the operator allowed
PRICES = {"in": "2.5", "out": "15", "read": "0.25", "write": "3.125"}  # USD / 1M
CREDIT_NANOS = 5_000_000_000
KEY = "sk-proj-oaiwire-key-0001"


def cost_nanos(usage: dict[str, Any]) -> int:
    """What a Responses or chat `usage` costs at PRICES, computed independently: cache reads and
    writes are parts of the input tokens, each at its own price."""
    chat = "prompt_tokens" in usage
    inputs = usage["prompt_tokens" if chat else "input_tokens"]
    details = usage.get("prompt_tokens_details" if chat else "input_tokens_details") or {}
    reads, writes = details.get("cached_tokens", 0), details.get("cache_write_tokens", 0)
    outputs = usage["completion_tokens" if chat else "output_tokens"]
    return usd_nanos((inputs - reads - writes, PRICES["in"]), (reads, PRICES["read"]),
                     (writes, PRICES["write"]), (outputs, PRICES["out"]))  # fmt: skip


@dataclass
class OaiBox(BoxDriver, LedgerView, MetricsView):
    server: ServerProcess
    config: Path
    db_path: Path

    email_prefix = "oaiwire"
    email_domain = "oaiwire.test"


@pytest.fixture(scope="package")
def box(tmp_path_factory: pytest.TempPathFactory, hostile: HostileUpstream) -> Iterator[OaiBox]:  # noqa: F811 (the fixture)
    folder = tmp_path_factory.mktemp("oaiwire")
    sections = base_sections(folder, free_port())
    sections["gateway"] = {"read_timeout_sec": 5.0, "max_retries": 0}
    config = write_config(folder / "codelace.toml", sections)
    box = OaiBox(None, config, Path(sections["database"]["path"]))  # type: ignore[arg-type]
    box.cli("providers", "add", "wire", "--kind", "openai", "--base-url", hostile.base_url,
            "--key", KEY)  # fmt: skip
    box.cli("providers", "add", "native", "--kind", "openai", "--base-url", hostile.base_url,
            "--key", KEY, "--responses-api")  # fmt: skip
    box.cli("providers", "add", "open", "--kind", "openai", "--base-url", hostile.base_url,
            "--key", KEY, "--allow-field", "server_tools")  # fmt: skip
    for model in (CHAT_MODEL, NATIVE_MODEL, OPEN_MODEL):
        box.cli("models", "set", model, "--input-per-1m", PRICES["in"],
                "--output-per-1m", PRICES["out"], "--cache-read-per-1m", PRICES["read"],
                "--cache-write-per-1m", PRICES["write"], "--max-output-tokens", "4096")  # fmt: skip
    box.server = ServerProcess(config, int(sections["server"]["port"]))
    box.server.start()
    yield box
    box.server.stop()
    assert KEY not in box.server.log_text()
