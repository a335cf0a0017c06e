"""A box on PostgreSQL whose database server is down (connection refused): every request that
needs the database is a 503 at once, in its route's envelope; none hangs, none is a 500; once the
server is back, the box serves again. (A
session that cannot be opened is raised by peewee as its own OperationalError, the driver's
error inside it.)"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from bench.pgcluster import binary
from tests import pg_cluster
from tests.fakes.openai_upstream import FakeOpenAI
from tests.gateway.conftest import MODEL, MODEL_PRICES, PROVIDER_ADD, Box
from tests.pg_cluster import SHARED_SECRET, need_postgres, wanted_engine
from tests.support import TLS, ServerProcess, free_port, write_config

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(wanted_engine() != "postgres", reason="a PostgreSQL server's outage"),
]
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
COUNT = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def own_cluster() -> Iterator[pg_cluster.TestCluster]:
    """A cluster of this test's own (the test stops its server while the box runs)."""
    need_postgres()
    cluster = pg_cluster.TestCluster(free_port()).start()
    try:
        yield cluster
    finally:
        cluster.stop()


def _box_on(cluster: pg_cluster.TestCluster, tmp_path: Path, fake: FakeOpenAI) -> Box:
    port = free_port()
    sections = {
        "server": {"host": "127.0.0.1", "port": port, "secret_key": SHARED_SECRET},
        "database": {"path": str(tmp_path / "data" / "codelace.db"), "url": cluster.new_database()},
    }
    config = write_config(tmp_path / "codelace.toml", sections)
    box = Box(None, config, Path(), fake)  # type: ignore[arg-type]
    box.cli(*PROVIDER_ADD, fake.base_url, "--key", "sk-fake-key-0001")
    box.cli("models", "set", MODEL, *MODEL_PRICES)
    box.server = ServerProcess(config, port).start()
    return box


def test_every_request_is_a_quick_503_while_the_database_is_down(
    own_cluster: pg_cluster.TestCluster, tmp_path: Path, fake: FakeOpenAI
) -> None:
    box = _box_on(own_cluster, tmp_path, fake)
    try:
        _, key = box.new_user("10")
        bearer = {"authorization": f"Bearer {key}"}
        asks: dict[str, Callable[[], httpx.Response]] = {
            "chat": lambda: httpx.post(
                f"{box.url}/v1/chat/completions", json=CHAT, headers=bearer, timeout=30, verify=TLS
            ),
            "count_tokens": lambda: httpx.post(
                f"{box.url}/v1/messages/count_tokens", json=COUNT, headers={"x-api-key": key},
                timeout=30, verify=TLS,
            ),
            "me": lambda: httpx.get(
                f"{box.url}/api/v1/auth/me", headers=bearer, timeout=30, verify=TLS
            ),
            "usage": lambda: httpx.get(
                f"{box.url}/api/v1/customer/usage", headers=bearer, timeout=30, verify=TLS
            ),
        }  # fmt: skip
        assert {name: ask().status_code for name, ask in asks.items()} == dict.fromkeys(asks, 200)
        pg_ctl = binary("pg_ctl")
        assert pg_ctl
        own_cluster._run(pg_ctl, "-D", str(own_cluster.data), "-m", "fast", "-w", "stop")
        for _ in range(3):
            for name, ask in asks.items():
                start = time.monotonic()
                answer = ask()
                took = time.monotonic() - start
                assert answer.status_code == 503, (name, answer.text)
                assert "the database is unavailable" in answer.text, (name, answer.text)
                assert took < 5, (name, took)
        own_cluster.start_again()
        for name, ask in asks.items():  # served again, at most a 503 on a session it had
            seen = [ask().status_code for _ in range(3)]
            assert seen[-1] == 200 and set(seen) <= {200, 503}, (name, seen)
        assert "unhandled error" not in box.server.log_text()
    finally:
        box.server.stop()
