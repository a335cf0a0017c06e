"""The tests' CLI fork server (tests/cli_fork.py) runs a command as a fresh process would: the
same output, error line and exit status, in the caller's environment and working directory."""

from __future__ import annotations

import subprocess
from pathlib import Path

import apsw
import pytest

from tests.cli_fork import fork_enabled, fork_server
from tests.support import PROGRAM, cli_env, run_cli, write_config

pytestmark = pytest.mark.skipif(not fork_enabled(), reason="CODELACE_TEST_FORK=0")


def fresh_process(cwd: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """The command started from scratch, as run_cli did before the fork server."""
    result = subprocess.run(
        [*PROGRAM, *args], capture_output=True, text=True, env=cli_env(env), cwd=cwd, check=False
    )
    return result.returncode, result.stdout, result.stderr


def forked(cwd: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    server = fork_server(cli_env())
    assert server is not None and server.forkable(list(args), cli_env(env))
    result = server.run([*PROGRAM, *args], list(args), cli_env(env), str(cwd), 60)
    return result.returncode, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (("version",), None),
        (("--help",), None),
        (("models", "set", "--help"), None),
        ((), None),  # exit 2, the help on stdout and one error line
        (("users", "frobnicate"), None),
        (("migrate", "--status"), None),  # ./codelace.toml of the working directory
        (("users", "show", "nobody@fork.test"), None),  # exit 1
        (("users", "list", "--json"), {"CODELACE_SERVER_PORT": "not-a-port"}),
        (("--config", "elsewhere.toml", "users", "list"), None),
    ],
)
def test_a_forked_command_answers_as_a_fresh_process(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str] | None
) -> None:
    write_config(tmp_path / "codelace.toml", {"database": {"path": "data/codelace.db"}})
    assert fresh_process(tmp_path, "migrate")[0] == 0
    assert forked(tmp_path, *args, env=env) == fresh_process(tmp_path, *args, env=env)


def test_serve_admin_and_another_interpreter_setting_start_from_scratch() -> None:
    server = fork_server(cli_env())
    assert server is not None
    assert server.forkable(["--config", "x.toml", "users", "list"], cli_env())
    assert not server.forkable(["--config", "x.toml", "serve", "--port", "1"], cli_env())
    assert not server.forkable(["admin"], cli_env())
    assert not server.forkable(["version"], cli_env({"PYTHONPATH": "/elsewhere"}))
    assert not server.forkable(["version"], cli_env({"LC_ALL": "C"}))


def test_a_command_past_its_timeout_is_killed(tmp_path: Path) -> None:
    """As subprocess.run(timeout=...): the child is killed, TimeoutExpired is raised."""
    config = write_config(tmp_path / "codelace.toml", {"database": {"path": "data/codelace.db"}})
    assert run_cli(config, "migrate").returncode == 0
    holder = apsw.Connection(str(tmp_path / "data" / "codelace.db"))
    holder.execute("BEGIN EXCLUSIVE")  # the command waits for the lock (busy timeout 10 s)
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            run_cli(config, "users", "create", "late@fork.test", timeout=1)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert run_cli(config, "users", "show", "late@fork.test").returncode == 1  # it never wrote
