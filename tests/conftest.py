"""Fixtures shared by every suite: a fresh config per test, and running servers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from codelace_box.db.core import close_database, open_database
from codelace_box.db.migrate import migrate
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.pg_cluster import (
    PgCluster,
    TestCluster,
    logged_statements_cluster,
    shared_cluster,
    wanted_engine,
)
from tests.support import ServerProcess, base_sections, free_port, write_config

ConfigFactory = Callable[..., Path]


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadscope` gives out the longest modules first (tests/xdist_order.py)."""
    if config.getvalue("dist") != "loadscope":
        return None
    from tests.xdist_order import LongestFirstScheduling

    return LongestFirstScheduling(config, log)


@pytest.fixture
def make_config(tmp_path: Path) -> ConfigFactory:
    """Write a config for this test (own data dir and port), merged with the given sections."""

    def factory(**sections: dict[str, Any]) -> Path:
        merged = base_sections(tmp_path)
        for name, keys in sections.items():
            merged.setdefault(name, {}).update(keys)
        return write_config(tmp_path / "codelace.toml", merged)

    return factory


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start `codelace-box serve` processes on a config; all are stopped at teardown."""
    started: list[ServerProcess] = []

    def factory(config: Path, *extra_args: str, env: dict[str, str] | None = None) -> ServerProcess:
        import tomllib

        port = tomllib.loads(config.read_text()).get("server", {}).get("port") or free_port()
        server = ServerProcess(config, int(port), env=env).start(*extra_args)
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """A PostgreSQL cluster for this test session (worker), started at first use."""
    yield shared_cluster()


@pytest.fixture
def pg_url(pg_cluster: PgCluster) -> str:
    """The URL of an empty PostgreSQL database of its own for this test."""
    return pg_cluster.new_database()


@pytest.fixture
def pg_db(pg_url: str) -> Iterator[str]:
    """A fresh migrated PostgreSQL database, opened in this process; its URL."""
    migrate(open_database(pg_url))
    yield pg_url
    close_database()


@pytest.fixture
def migrated_db(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh migrated SQLite file in this test's folder, opened in this process; its path
    (with CODELACE_TEST_DATABASE=postgres: a fresh PostgreSQL database; its URL)."""
    if wanted_engine() == "postgres":
        yield request.getfixturevalue("pg_db")
        return
    path = tmp_path / "box.db"
    migrate(open_database(path))
    yield path
    close_database()


@pytest.fixture
def logged_cluster() -> Iterator[TestCluster]:
    """A PostgreSQL cluster of the test's own that logs every statement (durable_inserts)."""
    cluster = logged_statements_cluster()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    """A local Slack-compatible webhook receiver, for `alerts.webhook_url`."""
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()
