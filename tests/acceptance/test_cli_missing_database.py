"""A command run from the wrong folder (no codelace.toml there: the built-in `data/codelace.db`
under the working folder) must not answer from a new, empty database as if the box's data
were gone: a command that reads or changes existing rows refuses in one line naming the path
it looked at and how to point at the right one, and creates nothing; a command that sets up a
new box creates it, and says so once on stderr (as `serve` does)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.acceptance.cli_tools import error_line
from tests.support import run_cli, write_config

KEY = "3f0c9a52"
EXISTING_ROWS = [
    ("users", "list"),
    ("users", "show", "you@example.com"),
    ("users", "limits", "you@example.com", "--rpm", "5"),
    ("users", "disable", "you@example.com"),
    ("users", "enable", "you@example.com"),
    ("credit", "you@example.com", "5", "--reason", "r"),
    ("keys", "create", "you@example.com"),
    ("keys", "list", "you@example.com"),
    ("keys", "update", KEY, "--name", "n"),
    ("keys", "revoke", KEY),
    ("providers", "list"),
    ("providers", "update", "openai", "--base-url", ""),
    ("providers", "key-add", "openai", "--key", "sk-test"),
    ("providers", "remove", "openai"),
    ("providers", "key-remove", "openai", "1"),
    ("providers", "key-enable", "openai", "1"),
    ("providers", "disable", "openai"),
    ("providers", "enable", "openai"),
    ("models", "list"),
    ("models", "set", "openai/m", "--input-per-1m", "1", "--output-per-1m", "2"),
    ("models", "alias", "m", "openai/m"),
    ("models", "unalias", "m"),
    ("models", "remove", "openai/m"),
    ("models", "disable", "openai/m"),
    ("models", "enable", "openai/m"),
    ("usage", "report"),
    ("usage", "export", "--format", "csv"),
    ("audit",),
    ("doctor",),
    ("backup", "copy.db"),
    ("db", "copy", "--to", "sqlite:///copy.db"),
]  # `admin` too, in a terminal: tests/admin/test_cli_pty.py
SETS_UP = [
    ("migrate",),
    ("users", "create", "you@example.com"),
    ("providers", "add", "openai", "--kind", "openai", "--key", "sk-test"),
]


@pytest.mark.parametrize("args", EXISTING_ROWS, ids=" ".join)
def test_a_command_on_existing_rows_refuses_a_missing_database(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    line = error_line(run_cli(None, *args, cwd=tmp_path))
    looked_at = tmp_path / "data" / "codelace.db"
    assert f"no database at {looked_at} " in line, line
    assert "built-in defaults" in line
    for way in ("--config PATH", "CODELACE_CONFIG", "database.path", "codelace-box migrate"):
        assert way in line, (way, line)
    assert not (tmp_path / "data").exists(), "a database (or its folder) was created"
    assert not (tmp_path / "copy.db").exists()


def test_the_refusal_names_the_config_file_it_read(tmp_path: Path) -> None:
    (tmp_path / "box").mkdir()
    config = write_config(tmp_path / "box" / "codelace.toml", {"database": {"path": "x/c.db"}})
    line = error_line(run_cli(config, "users", "limits", "you@example.com", "--rpm", "5"))
    assert f"no database at {tmp_path / 'box' / 'x' / 'c.db'} " in line, line
    assert str(config) in line
    assert not (tmp_path / "box" / "x").exists()


@pytest.mark.parametrize("args", SETS_UP, ids=" ".join)
def test_a_set_up_command_creates_the_database_and_says_so_once(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    first = run_cli(None, *args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    db = tmp_path / "data" / "codelace.db"
    assert db.is_file()
    assert first.stderr.strip().splitlines() == [
        f"note: no database at {db}: created a new, empty one (config: built-in defaults, "
        "no ./codelace.toml; if your data should be there, point at it with --config PATH, "
        "CODELACE_CONFIG or database.path)"
    ]
    again = run_cli(None, "migrate", cwd=tmp_path)
    assert again.returncode == 0 and again.stderr == ""
    listed = run_cli(None, "users", "list", cwd=tmp_path)  # it exists now: read as it is
    assert listed.returncode == 0 and listed.stderr == ""


def test_a_failed_set_up_command_says_the_creation_in_its_one_line(tmp_path: Path) -> None:
    line = error_line(run_cli(None, "users", "create", "not-an-email", cwd=tmp_path))
    assert "created a new, empty one" in line, line
    assert (tmp_path / "data" / "codelace.db").is_file()
