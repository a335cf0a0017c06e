"""A fork server for the tests' `codelace-box` commands: the CLI is imported once per test worker,
then every command runs in a fresh child forked from that process.

A command the tests run (`run_cli`) is a process of its own either way: its argv, environment,
working directory, stdin and pipes for stdout and stderr are the caller's, it exits with a
status, and nothing it does in memory outlives it. What the fork skips is the start of a
Python interpreter and the import of the CLI, about 0.15 s of CPU per command on a 2-core
machine (the suite runs about 2,000 commands). Whatever an interpreter reads only when it
starts (PYTHON* variables, the locale) comes from the server's own start, so a command whose
environment differs there runs as a fresh process instead (`forkable`); so do `serve` and
`admin`, and every command of the binary (CODELACE_TEST_BINARY). `serve` has a fork server of
its own, which has imported Sanic and the app (tests/serve_fork.py). CODELACE_TEST_FORK=0 turns
both servers off: every command is then started as before, from scratch.

The protocol, over a Unix SEQPACKET socket: the client sends one JSON message (argv, env, cwd)
with its stdin, stdout and stderr descriptors; the server forks and answers "pid N", then
"exit S" when the child has ended (S as subprocess's returncode: negative for a signal).
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import json
import locale
import os
import selectors
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# Variables a Python interpreter reads as it starts: a command that sets one of them, or drops
# it, needs an interpreter of its own.
_STARTUP_PREFIXES = ("PYTHON", "LC_", "LANG")
# Commands that stay fresh processes: the server (signals, worker processes) and the terminal UI.
_EXEC_COMMANDS = frozenset({"serve", "admin"})
# What the commands import as they run, loaded once in the server.
_PRELOAD = (
    "codelace_box.cli",
    "codelace_box.db.migrate",
    "codelace_box.accounts.keys",
    "codelace_box.billing.credits",
    "codelace_box.catalog.models",
    "codelace_box.catalog.providers",
    "codelace_box.doctor",
    "codelace_box.reports.traffic",
    "codelace_box.reports.usage",
    "codelace_box.api.views",  # `keys list`
    "codelace_box.catalog.aliases",
    "codelace_box.providers.openai",
    "codelace_box.upkeep.backups",
    "multiprocessing",
    "pwd",
)
# What `serve` imports, loaded in a fork server of its own (tests/serve_fork.py): Sanic, uvloop
# and aiohttp stay out of the commands' server, whose children would otherwise start with them.
_SERVE_PRELOAD = (
    *_PRELOAD,
    "codelace_box.server",
    "codelace_box.billing.currencies",
    "codelace_box.gateway.holds",
    "codelace_box.db.migrate",
    "encodings.idna",  # the first request's host name
)
_PRELOADS = {"cli": _PRELOAD, "serve": _SERVE_PRELOAD}
_MAX_MESSAGE = 1 << 20


def _startup_env(env: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith(_STARTUP_PREFIXES)}


# --- the server ---------------------------------------------------------------------------


def _exit_code(code: object) -> int:
    """What the interpreter makes of sys.exit(code)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _run_command(argv: list[str], cwd: str) -> int:
    """In the child: `python -m codelace_box ARGV` as the interpreter would run it."""
    import runpy
    import traceback

    os.chdir(cwd)
    sys.path[0] = cwd  # `python -m` puts the working directory first
    sys.argv = ["-m", *argv]
    try:
        runpy.run_module("codelace_box", run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exc:
        code = _exit_code(exc.code)
    except BaseException:
        traceback.print_exc()
        code = 1
    try:
        threading._shutdown()  # type: ignore[attr-defined]  # joins threads, as at exit
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        code = code or 120  # the interpreter's status when flushing at exit fails
    return code


def _child(request: dict[str, Any], fds: list[int]) -> None:
    """After the fork: take the caller's descriptors and environment, run, exit."""
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    os.closerange(3, 1 << 16)  # the server's sockets and the other requests' descriptors
    os.environ.clear()
    os.environ.update(request["env"])
    if "umask" in request:
        os.umask(request["umask"])  # the caller's, as a process it started would have
    time.tzset()
    tempfile.tempdir = None  # found again from this environment (TMPDIR), as a new process would
    code = 1
    try:
        code = _run_command(request["argv"], request["cwd"])
    finally:
        os._exit(code)


def _serve_request(connection: socket.socket) -> int | None:
    """Read one request and fork its child; the child's pid (None for a broken request)."""
    message, fds, _flags, _addr = socket.recv_fds(connection, _MAX_MESSAGE, 3)
    if len(fds) != 3 or not message:
        for fd in fds:
            os.close(fd)
        return None
    request = json.loads(message)
    pid = os.fork()
    if pid == 0:
        _child(request, fds)
    for fd in fds:
        os.close(fd)
    connection.send(f"pid {pid}".encode())
    return pid


def _preload(kind: str) -> None:
    """Import what the children will run, and check nothing started that a fork would copy
    half-made: no thread, no event loop."""
    import asyncio

    for name in _PRELOADS[kind]:
        __import__(name)
    assert threading.active_count() == 1, "a preloaded module started a thread: forks unsafe"
    policy = asyncio.get_event_loop_policy()
    loop = getattr(getattr(policy, "_local", None), "_loop", None)
    assert loop is None, "a preloaded module made an event loop: forks unsafe"
    if kind == "serve":
        # What is loaded stays out of the children's collections: the box's own start collects,
        # then freezes what it made (server.py), and would walk all of it first.
        gc.collect()
        gc.freeze()


def serve(socket_path: str, parent_fd: int, kind: str) -> None:
    """The server's loop: accept requests, fork, report each child's end. Ends when the
    test worker that started it ends (its pipe `parent_fd` closes)."""
    _preload(kind)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(socket_path)
    listener.listen(64)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, "accept")
    selector.register(parent_fd, selectors.EVENT_READ, "parent")
    print("ready", flush=True)
    while True:
        for key, _events in selector.select():
            if key.data == "parent":
                return
            if key.data == "accept":
                connection, _ = listener.accept()
                try:
                    pid = _serve_request(connection)
                except OSError:  # the client left
                    pid = None
                if pid is None:
                    connection.close()
                    continue
                selector.register(os.pidfd_open(pid), selectors.EVENT_READ, (connection, pid))
            else:
                connection, pid = key.data
                selector.unregister(key.fd)
                os.close(key.fd)
                _, status = os.waitpid(pid, 0)
                with contextlib.suppress(OSError):
                    connection.send(f"exit {os.waitstatus_to_exitcode(status)}".encode())
                connection.close()


# --- the client (in the test worker) --------------------------------------------------------


class ForkServer:
    """The fork server of this test worker, started at its first command."""

    def __init__(self, base_env: Mapping[str, str], kind: str = "cli") -> None:
        self.base_env = dict(base_env)
        folder = tempfile.mkdtemp(prefix=f"codelace-{kind}-fork-")
        self.socket_path = str(Path(folder) / "cli.sock")
        read_end, self._parent_pipe = os.pipe()
        self.process = subprocess.Popen(
            [sys.executable, __file__, self.socket_path, str(read_end), kind],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            env=self.base_env,
            cwd=folder,  # its imports see an empty folder first, as `python -m` in a test's would
            pass_fds=(read_end,),
        )
        os.close(read_end)
        assert self.process.stdout is not None
        ready = self.process.stdout.readline()
        assert ready == b"ready\n", f"the {kind} fork server did not start: {ready!r}"
        atexit.register(self.stop)

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._parent_pipe)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)
        with contextlib.suppress(OSError):
            Path(self.socket_path).unlink()
            Path(self.socket_path).parent.rmdir()

    def forkable(self, args: Sequence[str], env: Mapping[str, str]) -> bool:
        """Whether the command can run as a fork of this server (see the module's docstring)."""
        command = next(iter(_skip_options(args)), None)
        same_start = _startup_env(env) == _startup_env(self.base_env)
        return same_start and command not in _EXEC_COMMANDS

    def run(
        self,
        shown: list[str],
        args: list[str],
        env: Mapping[str, str],
        cwd: str,
        timeout: float,
    ) -> subprocess.CompletedProcess[str]:
        """Run `codelace-box ARGS` as a child of the server; as subprocess.run(capture_output=
        True, text=True) would (`shown` is the command line a failure names)."""
        out_read, out_write = os.pipe()
        err_read, err_write = os.pipe()
        connection, pid = self.start(args, env, cwd, [_stdin_fd(), out_write, err_write])
        with connection:
            outputs, status = _collect(connection, out_read, err_read, pid, timeout)
        stdout, stderr = (_text(data) for data in outputs)
        if status is None:
            raise subprocess.TimeoutExpired(shown, timeout, stdout, stderr)
        return subprocess.CompletedProcess(shown, status, stdout, stderr)

    def start(
        self, args: list[str], env: Mapping[str, str], cwd: str, fds: list[int], **extra: Any
    ) -> tuple[socket.socket, int]:
        """Fork a child running `codelace-box ARGS` on the descriptors `fds` (stdin, stdout,
        stderr; closed here once sent): the connection that will bring its "exit S", its pid."""
        request = json.dumps({"argv": args, "env": dict(env), "cwd": cwd, **extra}).encode()
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            connection.connect(self.socket_path)
            socket.send_fds(connection, [request], fds)
            pid = int(connection.recv(64).decode().split()[1])
        except BaseException:
            connection.close()
            raise
        finally:
            for fd in fds:
                os.close(fd)
        return connection, pid


def _skip_options(args: Sequence[str]) -> list[str]:
    """The words of a command line without the group's options (`--config X`)."""
    words, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--config":
            skip = True
        elif not arg.startswith("-"):
            words.append(arg)
    return words


def _stdin_fd() -> int:
    """A copy of the descriptor a subprocess would inherit as stdin: the caller's own, else
    /dev/null (the caller closes it once sent)."""
    try:
        return os.dup(0)
    except OSError:
        return os.open(os.devnull, os.O_RDONLY)


def _collect(
    connection: socket.socket, out_read: int, err_read: int, pid: int, timeout: float
) -> tuple[tuple[bytes, bytes], int | None]:
    """Read both pipes to their end and the exit status; on timeout kill the child (the
    status is then None), as subprocess.run does."""
    chunks: dict[int, list[bytes]] = {out_read: [], err_read: []}
    status: int | None = None
    deadline = time.monotonic() + timeout
    timed_out = False
    with selectors.DefaultSelector() as selector:
        selector.register(out_read, selectors.EVENT_READ)
        selector.register(err_read, selectors.EVENT_READ)
        selector.register(connection, selectors.EVENT_READ)
        while selector.get_map():
            left = deadline - time.monotonic()
            if left <= 0 and not timed_out:
                timed_out = True
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, 9)
            for key, _events in selector.select(max(left, 0.1) if not timed_out else 1):
                if key.fileobj is connection:
                    reply = connection.recv(64).decode()
                    status = int(reply.split()[1]) if reply else -9
                    selector.unregister(connection)
                    continue
                fd = int(key.fd)
                data = os.read(fd, 65536)
                if data:
                    chunks[fd].append(data)
                else:
                    selector.unregister(fd)
                    os.close(fd)
    outputs = (b"".join(chunks[out_read]), b"".join(chunks[err_read]))
    return outputs, None if timed_out else status


def _text(data: bytes) -> str:
    """Decoded as subprocess's text mode does: the locale's encoding, universal newlines."""
    text = data.decode(locale.getpreferredencoding(False))
    return text.replace("\r\n", "\n").replace("\r", "\n")


_servers: dict[tuple[int, str], ForkServer] = {}  # by the test worker that started it, kind
_servers_lock = threading.Lock()


def fork_enabled() -> bool:
    """False under CODELACE_TEST_FORK=0: every command then starts from scratch."""
    return os.environ.get("CODELACE_TEST_FORK", "1") != "0"


def fork_server(base_env: Mapping[str, str], kind: str = "cli") -> ForkServer | None:
    """This worker's fork server of that kind ("cli", or "serve": tests/serve_fork.py),
    started on first use, or None when turned off."""
    if not fork_enabled():
        return None
    with _servers_lock:
        if (os.getpid(), kind) not in _servers:
            _servers[os.getpid(), kind] = ForkServer(base_env, kind)
        return _servers[os.getpid(), kind]


if __name__ == "__main__":
    sys.path[0] = os.getcwd()  # as `python -m` would have it, not this file's folder
    serve(sys.argv[1], int(sys.argv[2]), sys.argv[3])
