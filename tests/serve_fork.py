"""`codelace-box serve` started as a child forked from a preloaded fork server (tests/cli_fork.py,
a server of its own that has imported what `serve` imports: Sanic, uvloop, aiohttp, the app),
where that is the same as starting it from scratch: a start then skips the interpreter's start
and the imports, about a second of CPU each (the suite starts about 450 servers).

The child is the process `python -m codelace_box --config X serve` would be: the test's argv,
environment, working directory, umask, stdin, and the log file as stdout and stderr; the same
process group as the test worker (Popen makes none); Python's own signal handlers, no thread
and no event loop before it starts its own; its exit status. What stays a fresh process
(`forkable`): several workers (`--workers N`, server.workers in the config, the environment),
the binary (CODELACE_TEST_BINARY), a program other than `python -m codelace_box` (nohup,
prlimit, another user), a config the tests cannot read, and an environment that differs from
the fork server's in anything but the box's CODELACE_ settings, TMPDIR and pytest's
PYTEST_CURRENT_TEST (a library may have read a variable as it was imported).
CODELACE_TEST_FORK=0 (every command) or CODELACE_TEST_FORK_SERVE=0 (only `serve`) turns it off.

`ForkedProcess` is the handle the tests hold in place of a subprocess.Popen.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from tests.cli_fork import ForkServer, _stdin_fd, fork_server

_PROGRAM = (sys.executable, "-m", "codelace_box")
# Variables that may differ from the fork server's: read by the box as it runs, not at import
# (pytest sets PYTEST_CURRENT_TEST for every test). Any other stays fresh: aiohttp, for one,
# makes its TLS contexts as it is imported, reading SSL_CERT_FILE then.
_RUNTIME_PREFIXES = ("CODELACE_", "TMPDIR", "PYTEST_CURRENT_TEST")


class ForkedProcess:
    """A Popen-like handle on a child of a fork server: pid, poll, wait, send_signal,
    terminate, kill, returncode. Its end comes as the server's "exit S" message; signals go
    through a pidfd, never to a pid another process took since."""

    def __init__(self, args: Sequence[str], connection: socket.socket, pid: int) -> None:
        self.args = list(args)
        self.pid = pid
        self.returncode: int | None = None
        self._connection = connection
        self._pidfd: int | None = None
        with contextlib.suppress(ProcessLookupError):
            self._pidfd = os.pidfd_open(pid)

    def _read_exit(self) -> int:
        reply = self._connection.recv(64).decode()
        # No message: the fork server is gone (its test worker ends); counted as killed.
        self.returncode = int(reply.split()[1]) if reply else -signal.SIGKILL
        self._connection.close()
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None
        return self.returncode

    def poll(self) -> int | None:
        if self.returncode is None:
            ready, _, _ = select.select([self._connection], [], [], 0)
            if ready:
                self._read_exit()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is not None:
            return self.returncode
        ready, _, _ = select.select([self._connection], [], [], timeout)
        if not ready:
            raise subprocess.TimeoutExpired(self.args, timeout or 0)
        return self._read_exit()

    def send_signal(self, sig: int) -> None:
        if self.poll() is None and self._pidfd is not None:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self._pidfd, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def fork_off() -> bool:
    """True when `serve` is to start from scratch every time."""
    return os.environ.get("CODELACE_TEST_FORK_SERVE", "1") == "0" or bool(
        os.environ.get("CODELACE_TEST_BINARY")
    )


def _one_worker(words: Sequence[str], env: Mapping[str, str], config: Path) -> bool:
    """Whether `serve` runs one worker, as far as the tests can tell without the box."""
    for at, word in enumerate(words):
        if word.startswith("--workers"):
            value = word.partition("=")[2] or (words[at + 1] if at + 1 < len(words) else "")
            if value != "1":
                return False
    if "CODELACE_CONFIG" in env or env.get("CODELACE_SERVER_WORKERS", "1") != "1":
        return False
    try:
        sections = tomllib.loads(config.read_text())
    except (OSError, ValueError):
        return False
    server = sections.get("server", {})
    return isinstance(server, dict) and server.get("workers", 1) == 1


def _same_start(env: Mapping[str, str], base: Mapping[str, str]) -> bool:
    """The environment differs from the fork server's only in what the box reads as it runs."""

    def kept(values: Mapping[str, str]) -> dict[str, str]:
        return {k: v for k, v in values.items() if not k.startswith(_RUNTIME_PREFIXES)}

    return kept(env) == kept(base)  # PYTHON*, LC_* and LANG included


def forkable(
    program: Sequence[str], words: Sequence[str], env: Mapping[str, str], config: Path
) -> ForkServer | None:
    """The fork server to start `PROGRAM WORDS` from, or None to start it fresh."""
    if fork_off() or tuple(program) != _PROGRAM or "serve" not in words:
        return None
    if not _one_worker(words, env, config):
        return None
    from tests.support import cli_env

    server = fork_server(cli_env(), "serve")
    if server is None or not _same_start(env, server.base_env):
        return None
    return server


def start(
    server: ForkServer,
    command: Sequence[str],
    env: Mapping[str, str],
    cwd: Path,
    log: IO[bytes],
) -> ForkedProcess:
    """Fork `serve` from the server: stdin the caller's, stdout and stderr the log."""
    words = list(command[len(_PROGRAM) :])
    fds = [_stdin_fd(), os.dup(log.fileno()), os.dup(log.fileno())]
    connection, pid = server.start(words, env, str(cwd), fds, umask=_umask())
    return ForkedProcess(command, connection, pid)


def _umask() -> int:
    """This process's umask, read without setting it (os.umask would, for every thread)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("Umask:"):
            return int(line.split()[1], 8)
    return 0o022
