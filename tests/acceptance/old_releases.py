"""Helpers of the upgrade tests: a box made from the SQL dump of an older release's database
(tests/acceptance/data/*.sql, written by that release's own CLI and server) and its secret."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from tests.support import run_cli


def box_from_dump(
    root: Path,
    port: int,
    dump: Path,
    secret: str,
    then: Callable[[sqlite3.Connection], object] | None = None,
) -> Path:
    """That release's database (the dump, then `then` on it) and a config naming it with the
    release's secret key, in root; returns the config."""
    db_path = root / "data" / "codelace.db"
    db_path.parent.mkdir(parents=True)
    with sqlite3.connect(db_path) as connection:
        connection.executescript(dump.read_text())
        if then is not None:
            then(connection)
    connection.close()
    config = root / "codelace.toml"
    config.write_text(
        f'[server]\nport = {port}\nsecret_key = "{secret}"\n[database]\npath = "{db_path}"\n'
    )
    return config


def cli(config: Path, *args: str) -> str:
    """A command's stdout; fails the test when it does not exit 0."""
    result = run_cli(config, *args)
    assert result.returncode == 0, (args, result.stderr)
    return result.stdout
