"""Helpers of the CLI acceptance tests: a box (config + data dir) driven only from outside.

Everything goes through `codelace-box` as a subprocess (tests.support.run_cli) and, where a
test must look at or tamper with the stored data, through SQLite as an operator would.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support import free_port, run_cli, sqlite_rows, write_config


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a failed command; fails the test otherwise."""
    assert result.returncode != 0, f"expected a failure, got 0: {result.stdout!r}"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one stderr line, got {result.stderr!r}"
    assert lines[0].strip(), "the error line is empty"
    return lines[0]


@dataclass
class Box:
    """A config file in `root` whose database is root/data/codelace.db."""

    root: Path
    config: Path
    port: int

    @classmethod
    def create(cls, root: Path, **sections: Mapping[str, Any]) -> Box:
        root.mkdir(parents=True, exist_ok=True)
        port = free_port()
        merged: dict[str, dict[str, Any]] = {
            "server": {"port": port},
            "database": {"path": "data/codelace.db"},
        }
        for name, keys in sections.items():
            merged.setdefault(name, {}).update(keys)
        return cls(root, write_config(root / "codelace.toml", merged), port)

    @property
    def db_path(self) -> Path:
        return self.root / "data" / "codelace.db"

    def cli(
        self, *args: str, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run_cli(self.config, *args, env=env)

    def ok(self, *args: str, env: Mapping[str, str] | None = None) -> str:
        """Run a command that must succeed (exit 0); its stdout."""
        result = self.cli(*args, env=env)
        assert result.returncode == 0, f"{args} exited {result.returncode}: {result.stderr}"
        return result.stdout

    def json(self, *args: str) -> Any:
        """A list/show command's --json output, parsed."""
        return json.loads(self.ok(*args, "--json"))

    def fail(self, *args: str, env: Mapping[str, str] | None = None) -> str:
        """Run a command that must fail; its one stderr line."""
        return error_line(self.cli(*args, env=env))

    def sql(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return sqlite_rows(self.db_path, statement, params)
