"""A process's tie to the `serve` supervisor that started it (a server worker, Sanic's
multiprocessing manager): it stops (SIGTERM, a graceful stop) when the supervisor dies, even
when that happened while it was still starting."""

from __future__ import annotations

import ctypes
import multiprocessing
import os
from contextlib import suppress
from signal import SIG_IGN, SIGKILL, SIGTERM, Signals, signal

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def stop_with_the_supervisor(stop: Signals = SIGTERM) -> None:
    """Linux: this worker gets SIGTERM when its parent process dies, e.g. the supervisor killed
    with -9; an orphaned Sanic worker would otherwise serve on and spin a CPU core. (Where the
    parent is a launcher of its own, it dies with the worker: no-op.) The kernel sends nothing
    for a parent already dead when this is asked (a supervisor killed while this worker
    started): the worker then stops all the same."""
    with suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, stop)
    parent = multiprocessing.parent_process()
    if parent is not None and os.getppid() != parent.pid:
        os.kill(os.getpid(), stop)


def manager_start() -> None:
    """Sanic's multiprocessing manager at its start: it ignores SIGTERM, as it ignores SIGINT
    (a SIGTERM sent to every process of the box at once, `kill -TERM -PGID` or a process
    manager signalling the group or cgroup, killed it under the stopping supervisor:
    "Experienced exception while trying to serve", exit 141); the supervisor ends it when
    done, and its death kills it (SIGKILL). Here, not in supervisor.py: the manager is spawned
    and imports the module of its start, and that one's imports (the metrics among them) made
    it write metric files of its own."""
    signal(SIGTERM, SIG_IGN)
    stop_with_the_supervisor(SIGKILL)
