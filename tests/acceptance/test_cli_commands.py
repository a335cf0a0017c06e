"""Acceptance of the README's "Command line": every command and option as written, from outside.

Each command runs as a subprocess on a real data dir. Success is exit 0; failure is a non-zero
exit with exactly one line on stderr; `--json` on list/show prints JSON. This module holds what
all commands share (help, version, defaults, init, migrate, backup, doctor); the commands of each
family are in test_cli_commands_accounts.py, _providers.py, _models.py and _serve.py (modules of
their own so that the suite's workers share them out: each command of the binary starts in
about a second).
"""

from __future__ import annotations

import importlib.metadata
import re
import stat
import subprocess
from pathlib import Path

import apsw
import pytest

from tests.acceptance.cli_tools import Box, error_line
from tests.support import PROGRAM, cli_env, run_cli

pytestmark = pytest.mark.timeout(120)


def test_version_prints_the_package_version() -> None:
    result = run_cli(None, "version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"codelace-box {importlib.metadata.version('codelace-box')}"


def test_admin_without_a_terminal_is_one_line_not_a_hang(tmp_path: Path) -> None:
    """`ssh host codelace-box admin` (no -t), cron or a pipe: no terminal to draw on."""
    result = subprocess.run(
        [*PROGRAM, "admin"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=cli_env(None),
        cwd=tmp_path,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1 and result.stdout == ""
    assert "admin needs an interactive terminal" in error_line(result)
    assert not (tmp_path / "data").exists()  # nothing created for a command that cannot run


def test_the_usual_version_and_short_help_flags_work_too() -> None:
    version = run_cli(None, "--version")
    assert (version.returncode, version.stderr) == (0, "")
    assert version.stdout == run_cli(None, "version").stdout
    for args in (("-h",), ("users", "-h"), ("serve", "-h"), ("models", "set", "-h")):
        result = run_cli(None, *args)
        assert (result.returncode, result.stderr) == (0, ""), args
        assert result.stdout == run_cli(None, *args[:-1], "--help").stdout


def test_migrate_applies_once_then_has_nothing_to_do(tmp_path: Path) -> None:
    fresh = Box.create(tmp_path)
    first = fresh.ok("migrate")
    assert fresh.db_path.is_file()
    version = re.search(r"schema version (\d+)", first)
    assert version and int(version.group(1)) >= 1
    again = fresh.ok("migrate")
    assert again == f"already at schema version {version.group(1)}, nothing to do\n", again


def test_every_list_and_show_command_prints_json(space: Box) -> None:
    space.ok("users", "create", "json@users.test")
    for args in (
        ("users", "list"),
        ("users", "show", "json@users.test"),
        ("keys", "list", "json@users.test"),
        ("providers", "list"),
        ("models", "list"),
    ):
        parsed = space.json(*args)
        assert isinstance(parsed, list | dict), args
        assert isinstance(parsed, dict) == (args[1] == "show"), args  # one object, else a list
    # what they print is the data, not just any JSON
    assert "json@users.test" in {u["email"] for u in space.json("users", "list")}
    shown = space.json("users", "show", "json@users.test")
    assert (shown["email"], shown["status"], shown["keys"]) == ("json@users.test", "active", [])
    assert space.json("keys", "list", "json@users.test") == []


def test_backup_writes_a_consistent_copy(space: Box, tmp_path: Path) -> None:
    space.ok("users", "create", "backup@users.test")
    target = tmp_path / "copies" / "box.db"
    space.ok("backup", str(target))
    copy = apsw.Connection(str(target))
    try:
        found = list(copy.execute("SELECT email FROM user WHERE email = 'backup@users.test'"))
        assert found == [("backup@users.test",)]
        assert list(copy.execute("PRAGMA integrity_check")) == [("ok",)]
    finally:
        copy.close()
    space.fail("backup", str(target))  # an existing file is never overwritten


def test_backup_over_the_database_s_own_wal_name_is_refused(tmp_path: Path) -> None:
    """`backup data/codelace.db-wal` (no WAL there while nothing has the database open) exited
    0 "backed up N pages", and the next command's open of the database took the copy for a
    broken write-ahead log and deleted it: the backup was gone without a word."""
    fresh = Box.create(tmp_path)
    # not forked (tests/cli_fork.py): an operator's process, whose exit removes the WAL file
    own = {"PYTHON_OWN_PROCESS": "1"}
    fresh.ok("users", "create", "walname@users.test", env=own)
    for suffix in ("-wal", "-shm", "-journal"):
        side = fresh.db_path.with_name(fresh.db_path.name + suffix)
        assert not side.exists(), suffix  # nothing has the database open
        assert "database's own" in fresh.fail("backup", str(side), env=own), suffix
        assert not side.exists(), suffix


def test_backup_over_the_wal_name_beside_a_symlinked_database_s_file_is_refused(
    tmp_path: Path,
) -> None:
    """database.path a symlink (a supported setup: restore writes through it): SQLite keeps
    the -wal/-shm/-journal beside the file the link points to, so `backup real/x.db-wal`
    exited 0 "backed up N pages", and the next open deleted the copy as a broken WAL."""
    fresh = Box.create(tmp_path / "box")
    own = {"PYTHON_OWN_PROCESS": "1"}
    fresh.ok("users", "create", "walname@users.test", env=own)
    real = tmp_path / "real" / "kept.db"
    real.parent.mkdir()
    fresh.db_path.rename(real)
    fresh.db_path.symlink_to(real)
    for suffix in ("-wal", "-shm", "-journal"):
        side = real.with_name(real.name + suffix)
        assert not side.exists(), suffix  # nothing has the database open
        assert "database's own" in fresh.fail("backup", str(side), env=own), suffix
        assert not side.exists(), suffix
    assert "walname@users.test" in fresh.ok("users", "list", env=own)


def test_backup_and_restore_of_a_dash_say_a_file_is_needed(space: Box, tmp_path: Path) -> None:
    """`backup - | ssh host 'cat > box.db'` (a dash as standard output, as tar and pg_dump
    take it) exited 0: the backup went to a file named '-' in the working folder, and the pipe
    carried the line "backed up N pages to -", which the operator kept as the backup."""
    for command in ("backup", "restore"):
        result = run_cli(space.config, command, "-", cwd=tmp_path)
        assert result.stdout == "" and "standard" in error_line(result), command
    assert not (tmp_path / "-").exists()


def test_doctor_passes_then_names_a_tampered_account(tmp_path: Path) -> None:
    fresh = Box.create(tmp_path)
    fresh.ok("users", "create", "tamper@users.test")
    fresh.ok("credit", "tamper@users.test", "5", "--reason", "before tampering")
    assert fresh.cli("doctor").returncode == 0
    fresh.sql("UPDATE user SET balance_nanos = balance_nanos + 1 WHERE email = 'tamper@users.test'")
    result = fresh.cli("doctor")
    assert result.returncode == 1
    error_line(result)
    assert "tamper@users.test" in result.stdout


def test_init_writes_a_private_config_once_unless_forced(tmp_path: Path) -> None:
    target = tmp_path / "codelace.toml"
    result = run_cli(None, "init", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    text = target.read_text()
    secret = re.search(r'^secret_key = "(.+)"$', text, re.M)
    assert secret and len(secret.group(1)) >= 32
    error_line(run_cli(None, "init", cwd=tmp_path))
    assert target.read_text() == text
    assert run_cli(None, "init", "--force", cwd=tmp_path).returncode == 0
    assert run_cli(None, "users", "list", cwd=tmp_path).returncode == 0  # the file it wrote loads


def test_every_command_works_on_built_in_defaults_with_no_config(tmp_path: Path) -> None:
    for args in (
        ("migrate",),
        ("users", "create", "nocfg@users.test"),
        ("credit", "nocfg@users.test", "3", "--reason", "defaults"),
        ("keys", "create", "nocfg@users.test"),
        ("providers", "add", "nocfg", "--kind", "openai", "--key", "sk-nocfg"),
        ("models", "set", "nocfg/m", "--input-per-1m", "1", "--output-per-1m", "2"),
        ("users", "list", "--json"),
        ("doctor",),
        ("backup", "copy.db"),
    ):
        result = run_cli(None, *args, cwd=tmp_path)
        assert result.returncode == 0, (args, result.stderr)
    assert (tmp_path / "data" / "codelace.db").is_file()
    assert (tmp_path / "data" / "secret_key").is_file()
    assert (tmp_path / "copy.db").is_file()


def test_admin_refuses_a_bad_config_before_opening_a_screen(tmp_path: Path) -> None:
    """`admin` (driven under a pty in tests/admin/test_cli_pty.py) checks its config first."""
    box = Box.create(tmp_path, server={"prot": 1})
    assert "server.prot" in box.fail("admin")
    assert "dashboard" in box.ok("admin", "--help").lower()


def test_help_lists_every_spec_command() -> None:
    result = run_cli(None, "--help")
    assert result.returncode == 0
    for name in (
        "serve", "admin", "init", "migrate", "users", "credit", "keys", "providers", "models",
        "backup", "doctor", "version",
    ):  # fmt: skip
        assert re.search(rf"^\s+{name}\b", result.stdout, re.M), name
    assert "--config" in result.stdout


@pytest.mark.parametrize("args", [(), ("users",), ("keys",), ("providers",), ("models",)])
def test_a_missing_command_is_one_error_line_with_the_help_on_stdout(
    args: tuple[str, ...],
) -> None:
    result = run_cli(None, *args)
    assert result.returncode == 2
    assert "missing command" in error_line(result)
    assert "Usage:" in result.stdout


@pytest.mark.parametrize(
    ("command", "options"),
    [
        (("serve",), ["--host", "--port", "--workers"]),
        (("init",), ["--force"]),
        (("credit",), ["--reason"]),
        (("keys", "create"), ["--name"]),
        (("providers", "add"), ["--kind", "--base-url", "--key"]),
        (("providers", "key-add"), ["--key"]),
        (
            ("models", "set"),
            ["--input-per-1m", "--output-per-1m", "--provider", "--upstream-model"],
        ),
        (("models", "set"), ["--max-output-tokens"]),
    ],
)
def test_every_spec_option_is_documented_in_help(
    command: tuple[str, ...], options: list[str]
) -> None:
    result = run_cli(None, *command, "--help")
    assert result.returncode == 0, result.stderr
    for option in options:
        assert re.search(rf"^\s+{re.escape(option)}\b", result.stdout, re.M), option


def test_output_that_cannot_be_written_is_one_line_and_status_1(tmp_path: Path) -> None:
    """`codelace-box version > /dev/full` (a full disk): the single binary exited 120 with a
    traceback ("Exception ignored in: <_io.TextIOWrapper name='<stdout>'...>"), the
    interpreter's own flush at exit failing again after the command's one error line."""
    for args in (("version",), ("models", "list", "--json")):
        with open("/dev/full", "w") as full:
            done = subprocess.run(
                [*PROGRAM, *args], stdout=full, stderr=subprocess.PIPE, text=True,
                env=cli_env(None), cwd=tmp_path, timeout=60, check=False,
            )  # fmt: skip
        assert done.returncode == 1, (args, done.stderr)
        (line,) = done.stderr.splitlines()
        assert line.startswith("error: ") and "No space left on device" in line, line
