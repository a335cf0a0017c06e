"""Helpers of the binary smoke test: run the executable, watch its process tree, drive a pty.

Everything here runs the built executable (dist/codelace-box, or $CODELACE_BINARY) as real
processes on 127.0.0.1; nothing imports or patches the package under test.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import termios
import time
from pathlib import Path

import httpx

from tests.support import REPO_ROOT, ServerProcess, cli_env

BINARY = Path(os.environ.get("CODELACE_BINARY") or REPO_ROOT / "dist" / "codelace-box")


class BinaryServer(ServerProcess):
    """`codelace-box serve` from the executable."""

    program = (str(BINARY),)


def binary_env(unpack_dir: Path) -> dict[str, str]:
    """The child's environment: onefile unpacks under unpack_dir, so leftovers can be seen."""
    unpack_dir.mkdir(parents=True, exist_ok=True)
    return {"TMPDIR": str(unpack_dir)}


def run_binary(
    cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run the executable with args in cwd; never raises on failure."""
    return subprocess.run(
        [str(BINARY), *args],
        capture_output=True,
        text=True,
        env=cli_env(env),
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    """The stdout of a command that must have succeeded."""
    assert result.returncode == 0, f"{result.args}: exit {result.returncode}: {result.stderr}"
    return result.stdout


# --- processes ----------------------------------------------------------------------------


def _stat_fields(pid: int | str) -> list[str]:
    """The fields of /proc/PID/stat after the command name: state, ppid, ..."""
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()


def process_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, start time) of every process, from /proc."""
    table: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = _stat_fields(entry.name)
            except OSError:
                continue
            table[int(entry.name)] = (int(fields[1]), fields[19])
    return table


def process_tree(root: int) -> dict[int, str]:
    """root and all its descendants: pid -> start time (to tell a reused pid apart)."""
    table = process_table()
    tree = {root: table[root][1]} if root in table else {}
    grew = True
    while grew:
        grew = False
        for pid, (parent, started) in table.items():
            if parent in tree and pid not in tree:
                tree[pid] = started
                grew = True
    return tree


def survivors(tree: dict[int, str]) -> list[int]:
    """The pids of the tree that still run (same pid, same start time, not a zombie)."""
    alive = []
    for pid, started in tree.items():
        try:
            fields = _stat_fields(pid)
        except OSError:
            continue
        if fields[19] == started and fields[0] != "Z":
            alive.append(pid)
    return alive


def wait_gone(tree: dict[int, str], timeout: float = 10) -> list[int]:
    """Wait until no process of the tree runs; returns the survivors (empty when all left)."""
    deadline = time.monotonic() + timeout
    while survivors(tree) and time.monotonic() < deadline:
        time.sleep(0.1)
    return survivors(tree)


def kill_tree(tree: dict[int, str]) -> None:
    """SIGKILL what is left of a tree (cleanup after a failed test only)."""
    for pid in survivors(tree):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


# --- the server ---------------------------------------------------------------------------


def wait_for_workers(server: ServerProcess, workers: int) -> set[int]:
    """The pids of the server's workers, once all of them logged that they are ready."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready = {int(pid) for pid in re.findall(r"Worker ready \[(\d+)\]", server.log_text())}
        if len(ready) >= workers:
            assert len(ready) == workers, server.log_text()
            return ready
        time.sleep(0.05)
    raise AssertionError(f"{workers} workers not ready:\n{server.log_text()}")


def sign_in(server: ServerProcess, email: str) -> dict[str, object]:
    """Sign in by code (email.backend console: the code is read from the server log)."""
    answer = httpx.post(server.base_url + "/api/v1/auth/otp/request", json={"email": email})
    assert answer.status_code == 200, answer.text
    pattern = re.compile(rf"sign-in code for {re.escape(email)}: (\d{{6}})")
    deadline = time.monotonic() + 10
    while not (found := pattern.findall(server.log_text())) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert found, "no sign-in code in the server log"
    verify = {"email": email, "code": found[-1]}
    answer = httpx.post(server.base_url + "/api/v1/auth/otp/verify", json=verify)
    assert answer.status_code == 200, answer.text
    body: dict[str, object] = answer.json()
    return body


# --- a terminal ---------------------------------------------------------------------------


def _take_the_terminal() -> None:
    """In the child: a session of its own, with the pty (its stdin) as controlling terminal,
    so that Ctrl-C typed there is SIGINT to the foreground process group, as at a shell."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    """A program on a pseudo-terminal of rows x columns, as an operator's ssh session runs it
    (its controlling terminal: Ctrl-C and a hangup are signals to it)."""

    def __init__(
        self, args: list[str], cwd: Path, env: dict[str, str], size: tuple[int, int] = (40, 120)
    ) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", *size, 0, 0))
        self.process = subprocess.Popen(
            args,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=cwd,
            env=cli_env({"TERM": "xterm-256color", **env}),
            # two system calls in the child, no Python-level locks taken: safe beside threads
            preexec_fn=_take_the_terminal,  # noqa: PLW1509
        )
        os.close(slave)
        self.output = b""
        self.tree = process_tree(self.process.pid)

    def read_until(self, text: bytes, timeout: float = 30, start: int = 0) -> int:
        """Read the screen output until text shows up after offset start; returns its end."""
        deadline = time.monotonic() + timeout
        while (found := self.output.find(text, start)) < 0:
            if time.monotonic() > deadline or not self._read(0.2):
                tail = self.output[-2000:].decode(errors="replace")
                raise AssertionError(f"{text!r} not on the screen; last output:\n{tail}")
        self.tree.update(process_tree(self.process.pid))
        return found + len(text)

    def _read(self, timeout: float) -> bool:
        """Read what the program wrote within timeout; False once the terminal closed."""
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: every process holding the terminal is gone
            return False
        self.output += data
        return bool(data)

    def press(self, keys: bytes) -> int:
        """Type keys; returns the output offset before they took effect."""
        mark = len(self.output)
        os.write(self.master, keys)
        return mark

    def wait(self, timeout: float = 20) -> int:
        """The exit code, reading the screen until the program ended and its output is read."""
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            self._read(0.1)
        while select.select([self.master], [], [], 0.05)[0] and self._read(0):
            pass
        return self.process.wait(max(0.1, deadline - time.monotonic()))

    def hang_up(self) -> None:
        """Close the terminal, as when the operator's ssh session drops (SIGHUP)."""
        os.close(self.master)
        self.master = -1

    def close(self) -> None:
        kill_tree(self.tree)
        self.process.wait(10)
        if self.master >= 0:
            os.close(self.master)
