"""A worker whose supervisor dies while the worker is still starting stops too: the worker asks
the kernel for a signal when its parent dies, and a parent already dead by then sends none."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
from pathlib import Path

from tests.foundation.conftest import make_workspace
from tests.foundation.test_server_stopping import pid_runs
from tests.support import ServerProcess, descendants, eventually, free_port


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            found |= {int(child) for child in (task / "children").read_text().split()}
    return found


def _stopped_replacement(server: ServerProcess, known: set[int], wait: float = 20) -> int:
    """The worker the supervisor starts in place of a killed one, stopped (SIGSTOP) as soon as
    it says it starts: before it has asked for its parent's death signal."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        started = {int(pid) for pid in re.findall(r"Starting worker \[(\d+)\]", server.log_text())}
        for pid in started - known:
            os.kill(pid, signal.SIGSTOP)
            return pid
        time.sleep(0.001)
    raise AssertionError("no replacement worker was started")


def test_a_worker_still_starting_when_its_supervisor_is_killed_stops(tmp_path: Path) -> None:
    port = free_port()
    space = make_workspace(tmp_path, server={"port": port})
    server = ServerProcess(space.config, port).start("--workers", "2")
    assert server.process is not None
    supervisor = server.process.pid
    started = _children(supervisor)
    workers = [int(pid) for pid in server.wait_for_log(r"Worker ready \[(\d+)\]", 2)]
    replacement = None
    try:
        os.kill(workers[0], signal.SIGKILL)
        replacement = _stopped_replacement(server, set(workers))
        server.process.kill()  # the supervisor dies before the replacement has started
        server.process.wait(10)
        os.kill(replacement, signal.SIGCONT)
        deadline = time.monotonic() + 30
        while pid_runs(replacement):
            assert time.monotonic() < deadline, "the orphaned replacement serves on"
            time.sleep(0.1)
    finally:  # end what this test started
        for pid in [*started, *([replacement] if replacement else [])]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                os.kill(pid, signal.SIGCONT)


def test_every_process_of_the_box_ends_when_its_supervisor_is_killed(tmp_path: Path) -> None:
    """`kill -9` of `serve --workers 2`: its workers stopped, but Sanic's manager process (the
    workers' shared state) served on as an orphan until the machine rebooted."""
    port = free_port()
    space = make_workspace(tmp_path, server={"port": port})
    server = ServerProcess(space.config, port).start("--workers", "2")
    assert server.process is not None
    server.wait_for_log(r"Worker ready \[(\d+)\]", 2)
    below = descendants(server.process.pid)
    assert len(below) >= 3, below  # two workers and Sanic's manager
    try:
        server.process.kill()
        server.process.wait(10)
        eventually(
            lambda: not [pid for pid in below if pid_runs(pid)],
            "every process of the killed box ends",
            timeout=40,
        )
    finally:
        for pid in below:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
