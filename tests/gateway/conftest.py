"""Fixtures of the gateway suite: a fake OpenAI upstream and a real box wired to it.

The box is a real `codelace-box serve` process; its provider, models, users, credit and keys
are set up with the real CLI, exactly as an operator would.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.fakes.openai_upstream import FakeOpenAI
from tests.pg_cluster import SHARED_SECRET, query_config_db, query_config_dicts
from tests.support import BoxDriver, ServerProcess, base_sections, free_port, sdk_http, write_config

NANOS = 1_000_000_000
MODEL = "fake/gpt-test"
UPSTREAM_MODEL = "gpt-4o-mini-2024-07-18"
IN_PRICE, OUT_PRICE = "2.5", "10"  # USD per 1M tokens
MODEL_PRICES = ("--input-per-1m", IN_PRICE, "--output-per-1m", OUT_PRICE)
MODEL_MAX_OUTPUT = 1000
PROVIDER_ADD = ("providers", "add", "fake", "--kind", "openai", "--base-url")


def cost_nanos(tokens_in: int, tokens_out: int, in_per_1m_usd: str, out_per_1m_usd: str) -> int:
    """The expected cost, computed independently: exact rationals, rounded up to a nano."""
    from fractions import Fraction

    total = (
        (Fraction(in_per_1m_usd) * tokens_in + Fraction(out_per_1m_usd) * tokens_out)
        * NANOS
        / 1_000_000
    )
    return -(-total.numerator // total.denominator)


@dataclass
class Box(BoxDriver):
    """One running box and the tools to drive it."""

    server: ServerProcess
    config: Path
    db_path: Path
    fake: FakeOpenAI
    keys: dict[str, str] = field(default_factory=dict)  # email -> API key

    email_domain = "gw.test"

    def remember_key(self, email: str, key: str) -> None:
        self.keys[email] = key

    def async_sdk(self, key: str) -> openai.AsyncOpenAI:
        """An SDK client for bursts: a connect may wait a minute (the SDK's own 5 s is too short
        for a hundred connects at once to a box under a loaded CI machine's test suite, whose
        listen backlog drops SYNs that come back only seconds later), no retries."""
        return openai.AsyncOpenAI(
            base_url=self.url + "/v1", api_key=key, max_retries=0,
            timeout=httpx.Timeout(600, connect=60),
            http_client=sdk_http(openai, asynchronous=True),
        )  # fmt: skip

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        return query_config_db(self.config, sql, params)

    def balance(self, email: str) -> tuple[int, int]:
        """(balance_nanos, held_nanos) of a user."""
        rows = self.query('SELECT balance_nanos, held_nanos FROM "user" WHERE email = ?', email)
        return int(rows[0][0]), int(rows[0][1])

    def usage_row(self, request_id: str) -> dict[str, Any]:
        rows = query_config_dicts(
            self.config, "SELECT * FROM usage_record WHERE request_id = ?", (request_id,)
        )
        assert rows, f"no usage row for {request_id}"
        return rows[0]

    def settled_row(self, request_id: str, wait: float = 15) -> dict[str, Any]:
        """The usage row of a request, once it is written (settlement may finish after the
        client saw the answer end)."""
        deadline = time.monotonic() + wait
        while not self.query("SELECT 1 FROM usage_record WHERE request_id = ?", request_id):
            assert time.monotonic() < deadline, f"request {request_id} was never settled"
            time.sleep(0.05)
        return self.usage_row(request_id)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _fresh_fake(request: pytest.FixtureRequest) -> None:
    if "fake" in request.fixturenames:
        request.getfixturevalue("fake").reset()


BoxFactory = Callable[..., Box]


@pytest.fixture(scope="module")
def box_factory(tmp_path_factory: pytest.TempPathFactory, fake: FakeOpenAI) -> Iterator[BoxFactory]:
    """Start boxes wired to the fake upstream (provider `fake`, model `fake/gpt-test`)."""
    started: list[ServerProcess] = []

    def factory(
        *serve_args: str,
        env: dict[str, str] | None = None,
        keys: tuple[str, ...] = ("sk-fake-key-0001",),
        **sections: dict[str, Any],
    ) -> Box:
        folder = tmp_path_factory.mktemp("gw")
        merged = base_sections(folder, free_port())
        for name, values in sections.items():
            merged.setdefault(name, {}).update(values)
        config = write_config(folder / "codelace.toml", merged)
        box = Box(None, config, Path(merged["database"]["path"]), fake)  # type: ignore[arg-type]
        box.cli(*PROVIDER_ADD, fake.base_url, "--key", keys[0])
        for extra in keys[1:]:
            box.cli("providers", "key-add", "fake", "--key", extra)
        box.cli("models", "set", MODEL, *MODEL_PRICES, "--upstream-model", UPSTREAM_MODEL,
                "--max-output-tokens", str(MODEL_MAX_OUTPUT))  # fmt: skip
        box.server = ServerProcess(config, int(merged["server"]["port"]), env=env)
        box.server.start(*serve_args)
        started.append(box.server)
        return box

    yield factory
    for server in started:
        server.stop()


@pytest.fixture
async def batch(migrated_db: Path) -> AsyncIterator[Any]:
    """A group commit's write batch; on PostgreSQL with its write thread (where a batch runs
    its writes' steps in turns)."""
    from codelace_box.db.batch import WriteBatch
    from codelace_box.db.offload import start_write_thread, stop_db_thread

    start_write_thread()
    try:
        yield WriteBatch()
    finally:
        stop_db_thread()


def pg_box_at(tmp_path: Path, url: str, fake: FakeOpenAI, env: dict[str, str] | None = None) -> Box:
    """A box on the PostgreSQL database at `url`, wired to the fake upstream, serving (the
    caller stops it)."""
    port = free_port()
    sections = {
        "server": {"host": "127.0.0.1", "port": port, "secret_key": SHARED_SECRET},
        "database": {"path": str(tmp_path / "data" / "codelace.db"), "url": url},
    }
    config = write_config(tmp_path / "codelace.toml", sections)
    box = Box(None, config, Path(), fake)  # type: ignore[arg-type]
    box.cli(*PROVIDER_ADD, fake.base_url, "--key", "sk-fake-key-0001")
    box.cli("models", "set", MODEL, *MODEL_PRICES)
    box.server = ServerProcess(config, port, env=env).start()
    return box


@pytest.fixture
def pg_box(tmp_path: Path, pg_url: str, fake: FakeOpenAI) -> Iterator[Box]:
    """One box on a fresh PostgreSQL database, wired to the fake upstream."""
    box = pg_box_at(tmp_path, pg_url, fake)
    try:
        yield box
    finally:
        box.server.stop()
