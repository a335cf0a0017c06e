"""Fixtures of the foundation suite: a CLI workspace (config + data dir) and raw SQLite access."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support import base_sections, run_cli, sqlite_rows, write_config


@dataclass
class Workspace:
    """A config file and its data directory, driven through the real `codelace-box` CLI."""

    root: Path
    config: Path

    @property
    def db_path(self) -> Path:
        return self.root / "data" / "codelace.db"

    def run(
        self, *args: str, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a command that must succeed."""
        result = run_cli(self.config, *args, env=env)
        assert result.returncode == 0, f"{args} failed: {result.stderr}"
        return result

    def json(self, *args: str) -> Any:
        """Run a --json command and parse its output."""
        return json.loads(self.run(*args, "--json").stdout)

    def fail(self, *args: str, code: int = 1, env: Mapping[str, str] | None = None) -> str:
        """Run a command that must fail; returns its single stderr line."""
        result = run_cli(self.config, *args, env=env)
        assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
        return one_error_line(result.stderr)

    def sql(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run SQL directly on the database file (as an operator with sqlite3 would)."""
        return sqlite_rows(self.db_path, statement, params)


def one_error_line(stderr: str) -> str:
    """The one line a failing command prints; fails the test when there are more."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one stderr line, got: {stderr!r}"
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


def make_workspace(root: Path, **sections: dict[str, Any]) -> Workspace:
    """A config in `root` whose database lives in root/data."""
    root.mkdir(parents=True, exist_ok=True)
    merged = base_sections(root)
    for name, keys in sections.items():
        merged.setdefault(name, {}).update(keys)
    return Workspace(root, write_config(root / "codelace.toml", merged))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    """One migrated workspace shared by a module (tests use their own emails and names)."""
    space = make_workspace(tmp_path_factory.mktemp("ws"))
    space.run("migrate")
    yield space


@pytest.fixture
def fresh_workspace(tmp_path: Path) -> Workspace:
    """A workspace of this test alone, not migrated yet."""
    return make_workspace(tmp_path)
