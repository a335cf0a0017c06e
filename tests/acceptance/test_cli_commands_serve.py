"""Acceptance of the README's "Command line" for `serve`: its flags over the config and the
environment, and the starts it refuses in one line, from outside (as
tests/acceptance/test_cli_commands.py).
"""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.acceptance.cli_tools import Box
from tests.support import PROGRAM, TLS, ServerProcess, cli_env, free_port, run_cli

pytestmark = pytest.mark.timeout(120)


def test_serve_flags_override_config_and_environment(tmp_path: Path) -> None:
    box = Box.create(tmp_path)
    port = free_port()
    server = ServerProcess(box.config, port, env={"CODELACE_SERVER_PORT": str(free_port())})
    server.start("--host", "127.0.0.1", "--port", str(port), "--workers", "2")
    try:
        assert httpx.get(server.base_url + "/healthz", verify=TLS).json() == {"status": "ok"}
        assert box.db_path.is_file()  # serve migrated the database first
        assert run_cli(box.config, "migrate").stdout.count("nothing to do") == 1
        box.ok("users", "create", "live@users.test")  # the CLI writes while serve runs
        box.ok("backup", str(tmp_path / "live-copy.db"))
        assert (tmp_path / "live-copy.db").stat().st_size > 0
    finally:
        assert server.stop() == 0


@pytest.mark.parametrize(
    "args",
    [
        ("serve", "--port", "0"),
        ("serve", "--port", "http"),
        ("serve", "--workers", "0"),
    ],
)
def test_serve_refuses_bad_flags_with_one_line(space: Box, args: tuple[str, ...]) -> None:
    space.fail(*args)


def test_serve_on_a_busy_port_is_one_line(space: Box) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        line = space.fail("serve", "--port", str(port))
    assert str(port) in line


def test_a_database_from_a_newer_version_is_refused_in_one_line(tmp_path: Path) -> None:
    """README "Upgrading": an older codelace-box refuses a newer schema (serve too)."""
    newer = Box.create(tmp_path)
    newer.ok("migrate")
    newer.sql("INSERT INTO schema_migration VALUES (999, 'from the future', '2030-01-01')")
    assert "999" in newer.fail("serve")
    assert "999" in newer.fail("users", "list")
    assert newer.cli("doctor").returncode == 1


def test_serve_at_a_terminal_gives_no_advice_of_options_it_does_not_take(tmp_path: Path) -> None:
    """Sanic warns at a terminal that it runs in production mode, to use `--debug` or `--dev`:
    advice to a Sanic app's developer, and `serve` has neither option."""
    box = Box.create(tmp_path)
    master, slave = os.openpty()
    command = [*PROGRAM, "--config", str(box.config), "serve", "--port", str(free_port())]
    process = subprocess.Popen(command, stdout=slave, stderr=slave, env=cli_env(), cwd=tmp_path)
    os.close(slave)
    seen = b""
    try:
        deadline = time.monotonic() + 60
        while b"Worker ready" not in seen and time.monotonic() < deadline:
            if select.select([master], [], [], 0.2)[0]:
                seen += os.read(master, 65536)
        assert b"Worker ready" in seen, seen.decode(errors="replace")
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)
    assert b"--debug" not in seen and b"PRODUCTION" not in seen, seen.decode(errors="replace")
