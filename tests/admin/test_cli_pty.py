"""`codelace-box admin` as an operator runs it: the real CLI in a pseudo-terminal of 80x24
shows the dashboard and quits cleanly on ctrl+q."""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from codelace_box.accounts.users import create_user
from tests.admin.pilot import SECRET, make_env
from tests.support import cli_env, free_port, write_config

pytestmark = pytest.mark.timeout(60)
ANSI = re.compile(
    rb"\x1b(\[[0-9;?<>=$]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[()][0-9A-Za-z]|[=>78])"
)


def read_until(master: int, done: object, deadline: float, seen: bytearray) -> bool:
    """Collect terminal output until `done(plain_text)` or the deadline; True when done."""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                return bool(done(ANSI.sub(b"", bytes(seen)).decode(errors="replace")))  # type: ignore[operator]
            if not chunk:
                break
            seen += chunk
        if done(ANSI.sub(b"", bytes(seen)).decode(errors="replace")):  # type: ignore[operator]
            return True
    return False


def run_admin(config: Path, cwd: Path, shown: Callable[[str], bool]) -> str:
    """`codelace-box admin` in an 80x24 pseudo-terminal until `shown(text)`, then ctrl+q: all
    it wrote, plain (it must quit with 0)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    started = time.monotonic()
    child = subprocess.Popen(
        [sys.executable, "-m", "codelace_box", "--config", str(config), "admin"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=cli_env({"TERM": "xterm-256color", "COLUMNS": "80", "LINES": "24"}),
        cwd=cwd,
        start_new_session=True,
        close_fds=True,
    )
    os.close(slave)
    seen = bytearray()
    try:
        drawn = read_until(master, shown, started + 30, seen)
        assert drawn, f"no dashboard on the terminal:\n{ANSI.sub(b'', bytes(seen))[-2000:]!r}"
        os.write(master, b"\x11")  # ctrl+q
        read_until(master, lambda _text: child.poll() is not None, time.monotonic() + 15, seen)
        assert child.wait(15) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(5)
        os.close(master)
    return ANSI.sub(b"", bytes(seen)).decode(errors="replace")


def test_admin_starts_and_quits_in_a_pseudo_terminal(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    create_user("pty-operator@example.com")
    plain = run_admin(
        env.path,
        tmp_path,
        lambda text: "F1 Dashboard" in text and "Users" in text and "1 (0 disabled)" in text,
    )
    assert "Traceback" not in plain and "error:" not in plain


@pytest.mark.parametrize("empty", [False, True], ids=["missing", "zero bytes"])
def test_admin_on_a_new_database_says_so_before_the_dashboard(tmp_path: Path, empty: bool) -> None:
    """admin made the database that was not there (or of 0 bytes), but its note came only
    once the dashboard had closed: the operator looked at an empty box with no word why."""
    db = tmp_path / "data" / "codelace.db"
    if empty:
        db.parent.mkdir()
        db.touch()
    sections = {  # a SQLite file whatever engine the suite runs on: the file is the subject
        "server": {"host": "127.0.0.1", "port": free_port(), "secret_key": SECRET},
        "database": {"path": str(db)},
    }
    config = write_config(tmp_path / "codelace.toml", sections)
    plain = run_admin(config, tmp_path, lambda text: "F1 Dashboard" in text)
    said = "made a new, empty database in it" if empty else f"no database at {db}: created"
    assert said in plain, plain[-2000:]
    assert plain.index(said) < plain.index("F1 Dashboard"), plain[-2000:]
    assert plain.count(said) == 1, plain[-2000:]
