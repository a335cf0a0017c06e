"""`serve --workers N` while its workers are slow to come up (more workers than cores on a
busy machine: each imports and opens the database on the same CPUs): the supervisor waits for
them (supervisor.py ack_wait_sec) rather than give up after Sanic's own 30 s, kill every worker,
those already serving included, and exit 1."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from codelace_box.supervisor import ack_wait_sec
from tests.foundation.conftest import make_workspace
from tests.support import HEALTHY_WAIT_SEC, TLS, ServerProcess, free_port

SLOW_START_SEC = 38.0  # past Sanic's 30 s (and its loop's slack), well within ack_wait_sec


def test_the_wait_for_the_workers_grows_with_workers_per_core() -> None:
    assert ack_wait_sec(1, 8) == ack_wait_sec(8, 8) >= SLOW_START_SEC + 10
    assert ack_wait_sec(40, 2) >= 2 * 59  # 34 of 40 were ready after 59 s on two busy cores
    assert ack_wait_sec(64, 1) >= 64 * 3  # 1-2 s of CPU each, on one busy core


@pytest.mark.timeout(120)
def test_a_worker_slower_to_start_than_30_s_is_waited_for(tmp_path: Path) -> None:
    """One of two workers is held (SIGSTOP) before it reports ready, for longer than Sanic's
    30 s, as a start of many more workers than cores takes on a busy machine (40 workers on
    two cores: 34 ready after 59 s here). The other serves meanwhile, and the box goes on
    with both once the slow one is ready."""
    port = free_port()
    space = make_workspace(tmp_path, server={"port": port})
    server, slow = _serve_with_a_worker_stopped(ServerProcess(space.config, port))
    try:
        held_until = time.monotonic() + SLOW_START_SEC
        server.wait_healthy(HEALTHY_WAIT_SEC)  # the other worker serves meanwhile
        while time.monotonic() < held_until:
            assert server.process is not None and server.process.poll() is None, (
                f"serve gave up on the slow worker:\n{server.log_text()}"
            )
            time.sleep(0.5)
        os.kill(int(slow), signal.SIGCONT)
        server.wait_for_log(rf"Worker ready \[({slow})\]", 1, wait=20)
        time.sleep(1)
        assert httpx.get(server.base_url + "/healthz", verify=TLS).status_code == 200
        assert "Not all workers acknowledged" not in server.log_text()
    except BaseException:
        server.kill()
        raise
    finally:
        if slow:  # a stopped worker would not even take its SIGKILL's successor, SIGTERM
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(slow), signal.SIGCONT)
    assert server.stop() == 0, server.log_text()


def _serve_with_a_worker_stopped(server: ServerProcess) -> tuple[ServerProcess, str]:
    """`serve --workers 2` launched with one worker stopped before it reported ready; started
    again (at most twice) when a loaded machine ran both to ready before the test looked."""
    for _attempt in range(3):
        server.launch("--workers", "2")
        try:
            if slow := _stopped_before_ready(server):
                return server, slow
        except BaseException:
            server.kill()
            raise
        assert server.stop() == 0, server.log_text()
        server.log_path.unlink()  # the next start's log: no pid of this one
    raise AssertionError("each time, both workers were ready before one could be stopped")


def _stopped_before_ready(server: ServerProcess) -> str:
    """A worker of a starting serve stopped (SIGSTOP) before it reported ready: its pid, or ''
    if every one reported ready before the test could look (its start takes about a second)."""
    for count in (1, 2):  # the first to start may be ready already, the second not yet
        started = server.wait_for_log(r"Starting worker \[(\d+)\]", count)
        log = server.log_text()
        if slow := next((pid for pid in started if f"Worker ready [{pid}]" not in log), ""):
            os.kill(int(slow), signal.SIGSTOP)
            if f"Worker ready [{slow}]" not in server.log_text():
                return slow
            os.kill(int(slow), signal.SIGCONT)  # it reported ready as the signal came
            return ""
    return ""
