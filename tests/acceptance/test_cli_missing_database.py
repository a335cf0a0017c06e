"""A command run from the wrong folder (no codelace.toml there: the built-in `data/codelace.db`
under the working folder) answered from a new, empty database it made there, silently, as if
the box's data were gone. A command still works on the built-in defaults with no config (it
makes the database), but says once on stderr where it made a new one; the commands that only
read a database as it is (audit, doctor, backup, db copy) refuse, creating nothing, in one
line naming the path they looked at and how to point at the right one."""

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
    ("migrate",),
    ("users", "create", "you@example.com"),
    ("providers", "add", "openai", "--kind", "openai", "--key", "sk-test"),
]
READS_A_WHOLE_DATABASE = [
    ("audit",),
    ("doctor",),
    ("backup", "copy.db"),
    ("db", "copy", "--to", "sqlite:///copy.db"),
]
NOTE = (
    "note: no database at {db}: created a new, empty one (config: built-in defaults, no "
    "./codelace.toml; if your data should be there, point at it with --config PATH, "
    "CODELACE_CONFIG or database.path)"
)


@pytest.mark.parametrize("args", READS_A_WHOLE_DATABASE, ids=" ".join)
def test_a_command_reading_a_whole_database_refuses_a_missing_one(
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
    line = error_line(run_cli(config, "doctor"))
    assert f"no database at {tmp_path / 'box' / 'x' / 'c.db'} " in line, line
    assert str(config) in line
    assert not (tmp_path / "box" / "x").exists()


@pytest.mark.parametrize("args", EXISTING_ROWS, ids=" ".join)
def test_a_command_on_a_missing_database_makes_it_and_says_so_once(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    """Its outcome is what it was on a new box (a list empty, "no user X" one error line);
    the note is on stderr, or inside that one error line."""
    first = run_cli(None, *args, cwd=tmp_path)
    db = tmp_path / "data" / "codelace.db"
    assert db.is_file()
    note = NOTE.format(db=db)
    if first.returncode == 0:
        made_secret = args[:2] == ("providers", "add")  # said too (test_cli_secret_note.py)
        said = first.stderr.strip().splitlines()
        assert said[:1] == [note] and len(said) == 1 + made_secret, first.stderr
    else:
        line = error_line(first)
        assert note.removeprefix("note: ") in line, line
    again = run_cli(None, "migrate", cwd=tmp_path)
    assert again.returncode == 0 and again.stderr == ""
    listed = run_cli(None, "users", "list", cwd=tmp_path)  # it exists now: read as it is
    assert listed.returncode == 0 and listed.stderr == ""


def test_a_failed_set_up_command_says_the_creation_in_its_one_line(tmp_path: Path) -> None:
    line = error_line(run_cli(None, "users", "create", "not-an-email", cwd=tmp_path))
    assert "created a new, empty one" in line, line
    assert (tmp_path / "data" / "codelace.db").is_file()


def test_every_refusal_of_a_missing_database_has_the_one_wording(tmp_path: Path) -> None:
    """doctor's own opening (behind audit, doctor, backup and db copy) said it in older words
    than the command line's (`no database at PATH (run codelace-box migrate or serve first)`,
    no config named, no way to point at the right one): one function now says it for both."""
    from codelace_box.config import load_config
    from codelace_box.doctor import open_existing_database
    from codelace_box.errors import NotFound

    config = write_config(tmp_path / "codelace.toml", {"database": {"path": "gone/c.db"}})
    with pytest.raises(NotFound) as refused:
        open_existing_database(load_config(str(config)))
    for args in READS_A_WHOLE_DATABASE:
        assert error_line(run_cli(config, *args)) == f"error: {refused.value.message}", args
    assert not (tmp_path / "gone").exists()


@pytest.mark.parametrize("empty", [False, True], ids=["missing", "zero bytes"])
def test_a_scheduled_backup_without_its_database_says_it_in_the_one_wording(
    tmp_path: Path, empty: bool
) -> None:
    """The backup's copy had words of its own for a database not there (`no database at
    PATH`, no config named, no way to point at the right one), and copied a file of 0 bytes
    as a database: the scheduled backup asks the one function, as the commands do, with a
    hint of its own (serve opened the database: it went from under serve, no new box)."""
    import threading
    from datetime import UTC, datetime

    from codelace_box.config import load_config
    from codelace_box.db.sqlite_file import missing_database
    from codelace_box.errors import NotFound
    from codelace_box.upkeep.backups import GONE_HINT, scheduled_backup_if_due

    config = load_config(
        str(write_config(tmp_path / "codelace.toml", {"backup": {"every_hours": 1}}))
    )
    db = tmp_path / "data" / "codelace.db"
    if empty:
        db.parent.mkdir()
        db.touch()
    with pytest.raises(NotFound) as refused:
        scheduled_backup_if_due(config, datetime.now(UTC), threading.Event())
    assert refused.value.message == missing_database(config, GONE_HINT)
    assert refused.value.message.startswith(f"no database at {db} ("), refused.value.message
    assert not (tmp_path / "data" / "backups").exists()
