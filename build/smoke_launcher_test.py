"""Smoke test of the single executable's launcher (`make binary-test`): PyInstaller's one-file
bootloader is the process the operator starts; it unpacks the program, runs it as its child and
forwards every signal it gets to it.

At a terminal Ctrl-C reaches both, so the program gets its copy of the one press too: that
must be one stop, not two (`serve --workers N` took a second as "kill the workers at once",
a command at a prompt was killed by it while it exited). A hangup (the terminal closed) is a
graceful stop with exit 0. And a launcher killed outright must not leave the program serving
on, orphaned. Nor may /tmp's cleaner (systemd-tmpfiles, 10 days) age out the unpacked files
of a `serve` that runs for weeks.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from smoke_support import (
    BINARY,
    BinaryServer,
    Terminal,
    binary_env,
    cmdline,
    kill_tree,
    ok,
    process_tree,
    run_binary,
    wait_for_workers,
    wait_gone,
)

from tests.fakes.stripe_double import StripeDouble
from tests.support import base_sections, write_config

pytestmark = pytest.mark.timeout(120)
STRIPE_SECRET_KEY = "sk_test_51SmokeTestOfTheLauncher00000000000000000"
STRIPE_WEBHOOK_SECRET = "whsec_smoketestofthelaunchersigningsecret0"


def test_ctrl_c_stops_serve_with_two_workers_gracefully(tmp_path: Path) -> None:
    config = write_config(tmp_path / "codelace.toml", base_sections(tmp_path))
    unpack_dir = tmp_path / "tmp"
    command = [str(BINARY), "--config", str(config), "serve", "--workers", "2"]
    terminal = Terminal(command, tmp_path, binary_env(unpack_dir))
    try:
        terminal.read_until(b"Worker ready", start=terminal.read_until(b"Worker ready", 60))
        mark = terminal.press(b"\x03")  # Ctrl-C
        assert terminal.wait(30) == 0, terminal.output[-3000:].decode(errors="replace")
        after = terminal.output[mark:].decode(errors="replace")
        assert "Received signal SIGINT. Shutting down." in after
        assert "Killing" not in after, after
        assert not wait_gone(terminal.tree)
        assert not list(unpack_dir.iterdir()), "the unpacked folder must be removed"
    finally:
        terminal.close()


def test_a_hangup_stops_serve_with_two_workers_and_exits_0(tmp_path: Path) -> None:
    # The binary's Python ignores PYTHONUNBUFFERED: the log lines written after the hangup
    # stayed buffered for a terminal that is gone, and the exit's flush of them failed (120)
    config = write_config(tmp_path / "codelace.toml", base_sections(tmp_path))
    unpack_dir = tmp_path / "tmp"
    command = [str(BINARY), "--config", str(config), "serve", "--workers", "2"]
    terminal = Terminal(command, tmp_path, binary_env(unpack_dir))
    try:
        terminal.read_until(b"Worker ready", start=terminal.read_until(b"Worker ready", 60))
        terminal.hang_up()
        assert terminal.process.wait(30) == 0
        assert not wait_gone(terminal.tree)
        assert not list(unpack_dir.iterdir()), "the unpacked folder must be removed"
    finally:
        terminal.close()


def test_ctrl_c_at_a_prompt_aborts_with_exit_1(tmp_path: Path) -> None:
    # The launcher's copy of the press came within ms: often while the program shut down,
    # which killed it by SIGINT (the shell saw 130); a few tries, as it was a race
    for _ in range(3):
        command = [str(BINARY), "providers", "add", "p", "--kind", "openai", "--key", "-"]
        terminal = Terminal(command, tmp_path, binary_env(tmp_path / "tmp"))
        try:
            terminal.read_until(b"Provider API key: ")
            mark = terminal.press(b"\x03")
            assert terminal.wait() == 1, terminal.output.decode(errors="replace")
            # its one line (on a first run, with the note that the database was made)
            last = terminal.output[mark:].strip().splitlines()[-1]
            assert last.startswith(b"error: aborted"), terminal.output[mark:]
        finally:
            terminal.close()


def test_serve_stops_when_its_launcher_is_killed(tmp_path: Path) -> None:
    sections = base_sections(tmp_path)
    config = write_config(tmp_path / "codelace.toml", sections)
    unpack_dir = tmp_path / "tmp"
    server = BinaryServer(config, sections["server"]["port"], env=binary_env(unpack_dir))
    server.start("--workers", "2", wait=60)
    assert server.process is not None
    launcher = server.process.pid
    tree = process_tree(launcher)
    try:
        wait_for_workers(server, 2)
        tree.update(process_tree(launcher))
        os.kill(launcher, signal.SIGKILL)  # `kill -9` of the pid the operator started
        server.process.wait(10)
        left = wait_gone(tree, timeout=30)
        assert not left, [cmdline(pid) for pid in left]
        assert "Received signal SIGTERM. Shutting down." in server.log_text()
        assert not list(unpack_dir.iterdir()), "the unpacked folder must be removed"
    finally:
        kill_tree(tree)


@pytest.mark.skipif(shutil.which("systemd-tmpfiles") is None, reason="needs systemd-tmpfiles")
def test_the_tmp_cleaner_leaves_a_running_serves_unpacked_files(tmp_path: Path) -> None:
    sections = base_sections(tmp_path)
    config = write_config(tmp_path / "codelace.toml", sections)
    unpack_dir = tmp_path / "tmp"
    server = BinaryServer(config, sections["server"]["port"], env=binary_env(unpack_dir))
    server.start(wait=60)
    try:
        files = [p for p in unpack_dir.rglob("*") if p.is_file()]
        assert len(files) > 100, "onefile unpacks under TMPDIR"
        weeks_ago = time.time() - 20 * 86400
        for path in files:  # as if serve had run for 20 days without reading them again
            os.utime(path, (weeks_ago, weeks_ago))
        rules = tmp_path / "tmp.conf"  # /tmp's rule (10d), on mtimes only: ctime is now here
        rules.write_text(f"d {unpack_dir} - - - m:10d\n")
        subprocess.run(["systemd-tmpfiles", "--clean", str(rules)], check=True)
        assert all(path.is_file() for path in files), "aged out from under a running serve"
    finally:
        assert server.stop() == 0, server.log_text()


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_goes_on_after_a_new_binary_is_installed_over_it(
    tmp_path: Path, workers: int
) -> None:
    # README, Upgrading: `install` puts the new binary in place while the old serve runs, and
    # the restart comes later. PyInstaller reads a module the program imports late (the stripe
    # library, on the first top-up) from the file at the binary's path each time: that was now
    # another file, and every top-up until the restart failed with a 500 (zlib.error).
    installed = tmp_path / "bin" / "codelace-box"
    installed.parent.mkdir()
    shutil.copy2(BINARY, installed)
    double = StripeDouble(STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET).start()
    sections = base_sections(tmp_path)
    sections["server"]["workers"] = workers
    sections["stripe"] = {
        "secret_key": double.secret_key,
        "webhook_secret": double.webhook_secret,
        "api_base": double.url,
    }
    config = write_config(tmp_path / "codelace.toml", sections)
    ok(run_binary(tmp_path, "--config", str(config), "users", "create", "up@example.com"))
    created = ok(run_binary(tmp_path, "--config", str(config), "keys", "create", "up@example.com"))
    key = re.findall(r"cl_\S+", created)[0]
    server = BinaryServer(config, sections["server"]["port"], env=binary_env(tmp_path / "tmp"))
    server.program = (str(installed),)
    server.start(wait=60)
    try:
        new_binary = tmp_path / "new-codelace-box"
        new_binary.write_text("#!/bin/sh\necho 'the next release'\n")
        subprocess.run(["install", "-m", "755", str(new_binary), str(installed)], check=True)
        answer = httpx.post(
            server.base_url + "/api/v1/stripe/checkout",
            headers={"authorization": f"Bearer {key}"},
            json={"amount_usd": 10},
        )
        assert answer.status_code == 200, answer.text
        assert double.session_by_url(answer.json()["checkout_url"])["amount_total"] == 1000
    finally:
        double.stop()
        assert server.stop() == 0, server.log_text()
