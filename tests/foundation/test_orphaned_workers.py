"""A worker whose supervisor dies while the worker is still starting stops too: the worker asks
the kernel for a signal when its parent dies, and a parent already dead by then sends none."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
from pathlib import Path
from typing import cast

from sanic import Sanic

from codelace_box import stopping
from tests.foundation.conftest import make_workspace
from tests.foundation.test_server_stopping import pid_runs
from tests.support import HEALTHY_WAIT_SEC, ServerProcess, descendants, eventually, free_port


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


def test_sigterm_while_a_worker_starts_stops_it_without_a_traceback(tmp_path: Path) -> None:
    """The supervisor stopped its workers with SIGINT: one still starting (before its own stop
    handlers) died of a KeyboardInterrupt, its traceback in the log of a clean stop."""
    port = free_port()
    space = make_workspace(tmp_path, server={"port": port})
    server = ServerProcess(space.config, port).launch("--workers", "2")
    assert server.process is not None
    starting = None
    try:
        starting = _stopped_replacement(server, set(), wait=30)  # paused as it starts
        server.process.send_signal(signal.SIGTERM)
        time.sleep(1.0)  # the supervisor has signalled its workers meanwhile
        with contextlib.suppress(ProcessLookupError):  # (under load it may have ended already)
            os.kill(starting, signal.SIGCONT)
        assert server.process.wait(30) == 0, server.log_text()
    finally:
        server.kill()
        if starting is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(starting, signal.SIGKILL)
                os.kill(starting, signal.SIGCONT)
    log = server.log_text()
    assert "Traceback" not in log and "KeyboardInterrupt" not in log, log
    eventually(lambda: not pid_runs(starting), "the paused worker ends")


def test_a_worker_killed_while_another_starts_is_replaced_at_once(tmp_path: Path) -> None:
    """A worker killed while another was still starting was replaced only once every worker
    had started (Sanic's start-up wait did not look at the dead): one worker fewer meanwhile,
    for as long as the slow one took."""
    port = free_port()
    space = make_workspace(tmp_path, server={"port": port})
    server = ServerProcess(space.config, port).launch("--workers", "2")
    assert server.process is not None
    slow = None
    try:
        slow = _stopped_replacement(server, set(), wait=30)  # paused as it starts
        # the other worker (a stall of the test's may have let the paused one report ready too)
        ready = server.wait_for_log(rf"Worker ready \[(?!{slow}\])(\d+)\]", 1)
        os.kill(int(ready[0]), signal.SIGKILL)
        server.wait_for_log(r"Starting worker \[(\d+)\]", 3, wait=15)  # its replacement
        os.kill(slow, signal.SIGCONT)
        server.wait_healthy(HEALTHY_WAIT_SEC)
        assert server.stop() == 0, server.log_text()
    finally:
        server.kill()
        if slow is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(slow, signal.SIGCONT)


def test_sigterm_to_every_process_of_the_box_at_once_stops_it_cleanly(tmp_path: Path) -> None:
    """`kill -TERM -PGID`, `timeout`, a process manager that signals the whole group or cgroup
    (systemd's default KillMode=control-group): the SIGTERM reaches the supervisor, its
    workers and Sanic's multiprocessing manager at once. The manager died of it, and the
    supervisor logged "Experienced exception while trying to serve" and exited 141, not 0
    (most times: it is a race, hence a few attempts)."""
    for attempt in range(3):
        port = free_port()
        space = make_workspace(tmp_path / str(attempt), server={"port": port})
        server = ServerProcess(space.config, port).start("--workers", "2")
        try:
            server.wait_for_log(r"Worker ready \[(\d+)\]", 2)
            assert server.process is not None
            for pid in [*descendants(server.process.pid), server.process.pid]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
            assert server.process.wait(60) == 0, server.log_text()
            assert "Experienced exception" not in server.log_text()
        finally:
            server.kill()


def test_a_stop_signal_after_the_workers_loop_closed_is_let_go() -> None:
    """A SIGTERM to the whole group can reach a worker after its loop has closed (its stop ran,
    Python's exit is joining threads): queuing the stop on that loop raised "Event loop is
    closed" out of the signal handler, and the worker exited 1 (the supervisor then logged it
    died during the stop, and exited 1: test above, about one run in thirty on a busy machine).
    There is nothing left to stop."""
    import uvloop

    loop = uvloop.new_event_loop()
    loop.close()
    stopping._signalled(cast(Sanic, None), loop, signal.SIGTERM, None)  # no RuntimeError
