"""Fixtures of the wire-features suite: one box in front of the hostile upstream
(tests/fakes/hostile_upstream.py) serving as an `anthropic` provider, which answers each call
with an answer of Anthropic's documentation (tests/fakes/anthropic_wire.py), and the three
ingress routes driven by the real SDKs: /v1/messages (anthropic), /v1/chat/completions and
/v1/responses (openai). The model has prompt-cache prices (5-minute and 1-hour writes apart)."""

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
    sdk_http,
    usd_nanos,
    write_config,
)

MODEL = "wire/claude"
PRICES = {"in": "3", "out": "15", "read": "0.3", "write": "3.75", "write_1h": "6"}  # USD / 1M
MAX_TOKENS = 2000


def cost_nanos(usage: dict[str, Any]) -> int:
    """What an Anthropic usage object costs at PRICES, computed independently."""
    split = usage.get("cache_creation") or {}
    hour = split.get("ephemeral_1h_input_tokens", 0)
    writes = usage.get("cache_creation_input_tokens", 0)
    return usd_nanos((usage["input_tokens"], PRICES["in"]),
                     (usage.get("cache_read_input_tokens", 0), PRICES["read"]),
                     (writes - hour, PRICES["write"]), (hour, PRICES["write_1h"]),
                     (usage["output_tokens"], PRICES["out"]))  # fmt: skip


@dataclass
class WireBox(BoxDriver, LedgerView, MetricsView):
    server: ServerProcess
    config: Path
    db_path: Path

    email_prefix = "wire"
    email_domain = "wire.test"

    def anthropic(self, key: str) -> Any:
        import anthropic

        return anthropic.Anthropic(base_url=self.url, api_key=key, max_retries=0, timeout=30,
                                   http_client=sdk_http(anthropic))  # fmt: skip


@pytest.fixture(scope="package")
def box(tmp_path_factory: pytest.TempPathFactory, hostile: HostileUpstream) -> Iterator[WireBox]:  # noqa: F811 (the fixture)
    folder = tmp_path_factory.mktemp("anthwire")
    sections = base_sections(folder, free_port())
    sections["gateway"] = {"read_timeout_sec": 5.0, "max_retries": 0}
    config = write_config(folder / "codelace.toml", sections)
    box = WireBox(None, config, Path(sections["database"]["path"]))  # type: ignore[arg-type]
    box.cli("providers", "add", "wire", "--kind", "anthropic", "--base-url",
            hostile.base_url.removesuffix("/v1"), "--key", "sk-ant-wire-key-0001",
            "--allow-field", "web_search", "--allow-field", "web_fetch",
            "--allow-field", "fallbacks", "--allow-field", "mcp_servers")  # fmt: skip
    box.cli("models", "set", MODEL, "--provider", "wire", "--upstream-model", "claude-sonnet-4-5",
            "--input-per-1m", PRICES["in"], "--output-per-1m", PRICES["out"],
            "--cache-read-per-1m", PRICES["read"], "--cache-write-per-1m", PRICES["write"],
            "--cache-write-1h-per-1m", PRICES["write_1h"],
            "--max-output-tokens", "4096")  # fmt: skip
    box.server = ServerProcess(config, int(sections["server"]["port"]))
    box.server.start()
    yield box
    box.server.stop()
    assert "sk-ant-wire-key-0001" not in box.server.log_text()
