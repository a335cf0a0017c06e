"""Fixtures shared by every suite: a fresh config per test, and running servers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from codelace_box.db.core import close_database, open_database
from codelace_box.db.migrate import migrate
from tests.support import ServerProcess, base_sections, free_port, write_config

ConfigFactory = Callable[..., Path]


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


@pytest.fixture
def migrated_db(tmp_path: Path) -> Iterator[Path]:
    """A fresh migrated SQLite file in this test's folder, opened in this process."""
    path = tmp_path / "box.db"
    migrate(open_database(path))
    yield path
    close_database()
