"""The supervisor of `serve --workers N`: how it stops on a signal at any moment, and how it
replaces a worker that died (the worker side of a stop: stopping.py).

Sanic's own SIGTERM/SIGINT handler (sanic 25.12, see
sanic-org/sanic#2997 and PR #3063) does its work inside the signal handler: it writes to the
monitor pipe and updates the shared worker state through the multiprocessing manager. When the
signal lands while the main loop is in the middle of such a call (it makes them every 0.1 s,
and many during start-up), the two calls interleave on one connection: the manager answers the
wrong caller and `serve` dies with a TypeError/AttributeError (exit 1), or, during start-up, the
supervisor spins forever re-sending the stop message it cannot act on. Here the handler only
records the signal; the supervisor's own loop, which polls every 0.1 s, notices it and shuts
the workers down the way Sanic does (each finishes its in-flight requests). A second signal
still kills at once, as in Sanic. A signal that arrives before the supervisor exists is kept
for it (see install_supervisor).
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import time
from contextlib import suppress
from multiprocessing.managers import SyncManager
from signal import (
    SIG_BLOCK,
    SIG_UNBLOCK,
    SIGHUP,
    SIGINT,
    SIGKILL,
    SIGTERM,
    Signals,
    pthread_sigmask,
)
from signal import signal as signal_func
from types import FrameType
from typing import Any

import sanic.mixins.startup
from sanic import Sanic
from sanic.exceptions import ServerKilled
from sanic.worker.constants import ProcessState
from sanic.worker.manager import MonitorCycle, WorkerManager

from codelace_box import metrics
from codelace_box.launcher import is_repeat, stop_before_serving
from codelace_box.parent_death import manager_start
from codelace_box.stopping import STOPPING_KEY, stop_signals

log = logging.getLogger("sanic.root")
_STOPS = (SIGTERM, SIGINT, SIGHUP)  # what a stop sends (a worker's exit code is minus the signal)
RESPAWN_PAUSE_SEC = 5.0
LATE_STOP_SEC = 3.0

STOP_WAIT_SEC = 45.0  # a worker's 30 s stop window (server.py STOP_WINDOW_SEC) and a margin
# How long a start waits for its workers to report ready (Sanic's own: 30 s, whatever their
# number): each imports the box and opens the database, 1-2 s of CPU, and more workers than
# cores share the cores (40 on two busy cores: 34 ready after 59 s). Past it Sanic kills every
# worker, those already serving too, and `serve` exits 1. A worker that fails to start ends
# the wait at once (Sanic sees it end); only a hung one waits this long.
ACK_WAIT_SEC = 60.0
ACK_WAIT_PER_WORKER_SEC = 5.0  # for each worker per core beyond the first


def ack_wait_sec(workers: int, cores: int) -> float:
    """The wait for `workers` workers to come up on `cores` CPU cores."""
    return ACK_WAIT_SEC + ACK_WAIT_PER_WORKER_SEC * (math.ceil(workers / max(1, cores)) - 1)


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity: a container's or taskset's)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on this platform
        return os.cpu_count() or 1


class SignalSafeWorkerManager(WorkerManager):
    """A WorkerManager whose signal handler only records the request to stop."""

    early_signal: int | None = None  # a signal received before the manager existed
    hangup_stops = True  # SIGHUP was not ignored when `serve` started (install_supervisor)
    stop_signal: int | None = None
    killed = False  # by a second stop signal
    serving_at_stop: frozenset[int] | None = None  # the workers alive when the stop began

    def __init__(self, number: int, *args: Any, **kwargs: Any) -> None:
        # Sanic's wait for the workers' start, in its loop's tenths of a second
        self.THRESHOLD = int(10 * ack_wait_sec(number, usable_cores()))
        super().__init__(number, *args, **kwargs)  # installs shutdown_signal (SIGINT, SIGTERM)
        self.stop_signal = self.early_signal
        if self.hangup_stops:  # blocked until now (install_supervisor): one held comes now
            signal_func(SIGHUP, self.shutdown_signal)
            pthread_sigmask(SIG_UNBLOCK, {SIGHUP})
        self._respawned_at: dict[str, float] = {}

    def shutdown_signal(self, signal: int, frame: FrameType | None) -> None:
        """Record the first stop signal; a second one kills every worker at once (the binary's
        launcher's copy of the first is not a second: launcher.is_repeat)."""
        if is_repeat(signal):
            return
        if self.stop_signal is not None or self._shutting_down:
            log.info("Shutdown interrupted. Killing.")
            self.killed = True  # join() raises it, for Sanic's exit 1, outside this handler
            with suppress(ServerKilled):
                self.kill()
            return
        self.stop_signal = signal

    def kill(self) -> None:
        """A second stop signal: SIGKILL each worker. (Sanic sends it to their process group,
        which is also the group of whatever launched `serve` when `serve` leads none: a wrapper
        script, a process manager, a deploy tool, all killed with it.) The supervisor then
        exits 1; the holds of the calls cut are released at the next start."""
        for process in self.processes:
            log.info("Killing %s [%s]", process.name, process.pid)
            if process.pid:
                with suppress(ProcessLookupError):
                    os.kill(process.pid, SIGKILL)
        raise ServerKilled

    def _all_workers_ack(self) -> bool:
        """Sanic's wait for the workers' start-up acknowledgement (every 0.1 s): it ends when
        a stop is requested, and a worker that died meanwhile (killed while another still
        started) is replaced now, not once all the others are up. One that failed to start
        has told Sanic so (its message waits in the monitor pipe): Sanic's wait then ends the
        start (exit 1), with nothing started in its place."""
        if self.stop_signal is not None:
            return True
        if not self.monitor_subscriber.poll(0):
            self._respawn_dead_workers()
        return bool(super()._all_workers_ack())

    def _poll_monitor(self) -> MonitorCycle | None:
        if self.stop_signal is not None and not self._shutting_down:
            log.info("Received signal %s. Shutting down.", Signals(self.stop_signal).name)
            self.shutdown()
            _stop_listening()
            return MonitorCycle.BREAK
        self._respawn_dead_workers()
        return super()._poll_monitor()

    def shutdown(self) -> None:
        """Sanic's shutdown, with SIGTERM where Sanic sends SIGINT: a worker still starting
        (before its stop handlers are in place) died of the KeyboardInterrupt, its traceback in
        the log of a clean stop; SIGTERM ends it quietly then (it had served nothing, opened
        nothing), and a worker that has its handlers takes both alike (a graceful stop)."""
        if self.serving_at_stop is None:  # one dead already did not die in the stop
            alive = [p.pid for p in self.transient_processes if p.pid and p.is_alive()]
            self.serving_at_stop = frozenset(alive)
        for process in self.processes:
            if process.is_alive() and process.state is not ProcessState.TERMINATED:
                with suppress(BrokenPipeError, ConnectionResetError, EOFError):
                    process.set_state(ProcessState.TERMINATED, force=True)
                with suppress(ProcessLookupError, TypeError):  # TypeError: no pid yet
                    os.kill(process.pid, SIGTERM)
        self._shutting_down = True

    def join(self) -> None:
        """After a stop: wait for every worker to end (Sanic itself waits 10 s per worker,
        then its exit kills the rest, cutting requests still finishing)."""
        died = False
        if self.stop_signal is not None:
            self._wait_for_workers_to_end()
            died = self._died_during_the_stop()
        super().join()
        if self.killed or died:
            raise ServerKilled  # Sanic's serve exits 1

    def _wait_for_workers_to_end(self) -> None:
        """Each worker finishes its requests in flight and the calls whose clients left (one
        window: Sanic's graceful timeout), up to STOP_WAIT_SEC in all. A worker that has not
        marked itself stopping (STOPPING_KEY) lost the signal: it came while Sanic ignored stops
        during its start or swapped its handlers. It is signalled again every LATE_STOP_SEC."""
        deadline = time.monotonic() + STOP_WAIT_SEC
        nudge_at = time.monotonic() + LATE_STOP_SEC
        while time.monotonic() < deadline:
            alive = [p for p in self.transient_processes if p.pid and p.is_alive()]
            if not alive:
                return
            if time.monotonic() >= nudge_at:
                nudge_at = time.monotonic() + LATE_STOP_SEC
                for process in alive:
                    if not self._marked_stopping(process):
                        log.info("Stopping worker %s again [%s]", process.name, process.pid)
                        with suppress(ProcessLookupError):
                            os.kill(process.pid, SIGTERM)
            time.sleep(0.1)

    def _died_during_the_stop(self) -> bool:
        """Whether a worker ended otherwise than by finishing its stop (killed, out of memory,
        a crash): its calls in flight were cut, not answered (their holds are freed at the
        next start). Logged, and `serve` exits 1 rather than report a clean stop. A stop
        signal's default action is no death: it ends a worker still starting, which served
        nothing (`shutdown`; a hangup reaches the whole process group)."""
        died = False
        for process in self.transient_processes:
            code, serving = process.exitcode, self.serving_at_stop
            if serving is not None and process.pid not in serving:
                continue  # dead before the stop (logged then, a replacement pending)
            if process.pid and not process.is_alive() and code and -code not in _STOPS:
                log.error("Worker %s [%s] died (exit %s) during the stop; its calls in flight "
                          "were cut.", process.name, process.pid, code)  # fmt: skip
                died = True
        return died and not self.killed

    def _marked_stopping(self, process: Any) -> bool:
        with suppress(Exception):  # the shared state is gone once the manager process ended
            return bool(self.worker_state[process.name].get(STOPPING_KEY))
        return False

    def _respawn_dead_workers(self) -> None:
        """A server worker that died while serving (killed, out of memory, a crash) is replaced,
        as gunicorn and uvicorn do; Sanic would serve on with one worker fewer. At most one
        replacement per worker every RESPAWN_PAUSE_SEC, so a worker that cannot start does not
        make the supervisor spin."""
        if self._shutting_down:
            return
        now = time.monotonic()
        for process in list(self.transient_processes):
            if process.state is ProcessState.RESTARTING or not process.pid or process.is_alive():
                continue
            if now - self._respawned_at.get(process.name, -RESPAWN_PAUSE_SEC) < RESPAWN_PAUSE_SEC:
                continue
            self._respawned_at[process.name] = now
            code = process.exitcode
            log.error("Worker %s [%s] died (exit %s); starting a new one.", process.name,
                      process.pid, code)  # fmt: skip
            metrics.forget_worker(process.pid)  # its streams are not relayed any more
            with suppress(Exception):  # it is tried again after the pause
                process.set_state(ProcessState.FAILED, force=True)
                process.restart()


def _stop_listening() -> None:
    """The supervisor lets go of the listening sockets it made for its workers (Sanic closes
    them only once every worker ended): the workers close theirs as they stop, and a connection
    made during the stop is then refused at once, as with one process, where it waited
    unanswered in the queue until the stop ended and was then reset (a proxy in front waited
    on it instead of trying another box)."""
    for app in Sanic._app_registry.values():
        for server_info in app.state.server_info:
            sock = server_info.settings.get("sock")
            if sock is not None:
                sock.close()  # Sanic's own close at its end does nothing more


def _record_early_signal(signal: int, frame: FrameType | None) -> None:
    if not is_repeat(signal):  # noted, so that its copy after the manager starts is one too
        SignalSafeWorkerManager.early_signal = signal


def install_supervisor() -> None:
    """Make Sanic.serve (multi-worker mode) supervise its workers with SignalSafeWorkerManager.

    Until the manager exists (Sanic first starts its multiprocessing manager process), a stop
    signal is recorded rather than killing the supervisor and orphaning that process; the
    manager then starts, and at once stops, the workers. A hangup is blocked until then: a
    blocked signal stays blocked in the processes Sanic spawns meanwhile (its multiprocessing
    manager, which a hangup of the process group would otherwise kill under the supervisor),
    and the supervisor's own waits for its manager (it was ignored: lost, the box served on).
    """
    startup: Any = sanic.mixins.startup
    startup.WorkerManager = SignalSafeWorkerManager
    startup.Manager = shared_state_manager
    for stop in (SIGINT, SIGTERM):
        signal_func(stop, _record_early_signal)
    SignalSafeWorkerManager.hangup_stops = SIGHUP in stop_signals()
    if SignalSafeWorkerManager.hangup_stops:
        signal_func(SIGHUP, _record_early_signal)
        pthread_sigmask(SIG_BLOCK, {SIGHUP})  # held for the manager (__init__), not lost
    if SignalSafeWorkerManager.early_signal is None:  # one `serve` noted just before
        SignalSafeWorkerManager.early_signal = stop_before_serving()


def shared_state_manager() -> SyncManager:
    """multiprocessing.Manager() as Sanic starts it (the process holding the workers' shared
    state), tied to the supervisor as the workers are: a `kill -9` of the supervisor left it
    running, an orphan, for good (with multiprocessing's resource tracker, which waits for it)."""
    manager = SyncManager(ctx=multiprocessing.get_context())
    manager.start(initializer=manager_start)  # (a light module: a spawned process imports it)
    return manager
