"""A zero-byte file where the database should be (a wrong path to a file just touched, a copy
that failed before its first byte) was migrated silently into a new, empty database, as if
the box's data were gone without a word. It is made a database as before (every command
works on it as on a missing one), and said once: on stderr by a command (inside its one
error line when it fails), in the log by serve."""

from __future__ import annotations

from pathlib import Path

import pytest

from codelace_box.db.migrate import MIGRATIONS
from tests.acceptance.cli_tools import error_line
from tests.support import ServerProcess, free_port, run_cli, write_config

NOTE = (
    "note: the database at {db} was an empty file (0 bytes: a wrong path, or a copy that "
    "failed?): made a new, empty database in it (config: built-in defaults, no "
    "./codelace.toml; if your data should be there, point at it with --config PATH, "
    "CODELACE_CONFIG or database.path)"
)


def _empty_file(folder: Path) -> Path:
    db = folder / "data" / "codelace.db"
    db.parent.mkdir(parents=True)
    db.touch()
    return db


@pytest.mark.parametrize(
    "args", [("users", "list"), ("migrate",), ("models", "list"), ("usage", "report")], ids=" ".join
)
def test_a_command_on_a_zero_byte_database_says_so_once(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    db = _empty_file(tmp_path)
    first = run_cli(None, *args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stderr.strip().splitlines() == [NOTE.format(db=db)], first.stderr
    again = run_cli(None, *args, cwd=tmp_path)
    assert again.returncode == 0 and again.stderr == "", again.stderr


def test_a_failed_command_says_it_in_its_one_line(tmp_path: Path) -> None:
    db = _empty_file(tmp_path)
    line = error_line(run_cli(None, "users", "show", "nobody@example.com", cwd=tmp_path))
    assert NOTE.format(db=db).removeprefix("note: ") in line, line


def test_serve_on_a_zero_byte_database_says_so_in_its_log(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path / "codelace.toml", {"server": {"port": port}})
    db = _empty_file(tmp_path)
    server = ServerProcess(config, port).start()
    assert server.stop() == 0
    log = server.log_text()
    assert f"the database at {db} was an empty file (0 bytes" in log, log
    assert "created a new, empty one" not in log
    server.log_path.unlink()
    server.start()
    assert server.stop() == 0
    assert "was an empty file" not in server.log_text()


READS_A_WHOLE_DATABASE = [
    ("audit",),
    ("doctor",),
    ("backup", "copy.db"),
    ("db", "copy", "--to", "sqlite:///copy.db"),
]


@pytest.mark.parametrize("args", READS_A_WHOLE_DATABASE, ids=" ".join)
def test_a_command_reading_a_whole_database_refuses_a_zero_byte_one_as_a_missing_one(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    """doctor and backup opened the empty file as a database: SQLite wrote its first page in
    it (the file the operator should look at changed), doctor said 'schema version 0', backup
    copied a database of nothing and exited 0. They refuse it as a missing database, in the
    one wording (naming the empty file), and leave it as it was."""
    db = _empty_file(tmp_path)
    line = error_line(run_cli(None, *args, cwd=tmp_path))
    assert line.startswith(f"error: no database at {db} (an empty file of 0 bytes"), line
    for way in ("built-in defaults", "--config PATH", "CODELACE_CONFIG", "codelace-box migrate"):
        assert way in line, (way, line)
    assert db.stat().st_size == 0 and sorted(db.parent.iterdir()) == [db]
    assert not (tmp_path / "copy.db").exists()


def test_migrate_status_on_a_zero_byte_database_writes_nothing(tmp_path: Path) -> None:
    """`migrate --status` promises to write nothing, but opened the empty file as a database:
    SQLite wrote its first page in it. It says what it says of a missing database (every
    migration pending), that the file is empty, and leaves it as it was."""
    db = _empty_file(tmp_path)
    result = run_cli(None, "migrate", "--status", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"no database at {db} yet: an empty file of 0 bytes"), lines
    # one line a migration, as with a database (names hold commas: "6 messages api, cache ...")
    assert lines[1:] == [f"pending: {version} {m.NAME}" for version, m in MIGRATIONS], lines
    assert db.stat().st_size == 0 and sorted(db.parent.iterdir()) == [db]
