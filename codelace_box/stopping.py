"""How `serve` stops on SIGTERM/SIGINT (and SIGHUP, STOP_SIGNALS) at any moment, in the
supervisor and in each worker.

Supervisor (`serve --workers N`): Sanic's own SIGTERM/SIGINT handler (sanic 25.12, see
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

Worker (and the single process of `--workers 1`): a stop that arrives while the worker starts
is lost in Sanic (its handler stops the event loop inside a start-up step, and the loop then
serves on until the supervisor gives up after 10 s), and uvloop drops a signal that comes
while its loop is between two runs (Sanic runs the start-up steps one `run_until_complete`
at a time). Here every such stop (a Python-level handler beside uvloop's, and
`StopSafeSanic.stop` for Sanic's) is queued and carried out once the worker serves; the
single process's `/healthz` answers 503 until that is in place, so a stop sent after its
first 200 is kept (a supervisor signals a worker that lost its stop again).

Both lean on Sanic internals (private names of its worker manager and worker processes), so
pyproject.toml bounds sanic to the release line they were written for, and `serve` first runs
`check_sanic_hooks()`: a Sanic without one of them is a one-line start error naming its version.
"""

from __future__ import annotations

import asyncio
import logging
import math
import multiprocessing
import os
import time
from contextlib import suppress
from contextvars import Context
from functools import partial
from multiprocessing.managers import SyncManager
from signal import SIG_IGN, SIGHUP, SIGINT, SIGKILL, SIGTERM, Signals, getsignal
from signal import signal as signal_func
from types import FrameType
from typing import Any

import sanic.mixins.startup
from sanic import Sanic
from sanic import __version__ as SANIC_VERSION
from sanic.application.state import ApplicationState
from sanic.exceptions import ServerKilled
from sanic.mixins.startup import StartupMixin
from sanic.worker.constants import ProcessState
from sanic.worker.manager import MonitorCycle, WorkerManager
from sanic.worker.multiplexer import WorkerMultiplexer
from sanic.worker.process import WorkerProcess

from codelace_box import metrics
from codelace_box.errors import ConfigError
from codelace_box.launcher import is_repeat
from codelace_box.parent_death import stop_with_the_supervisor

log = logging.getLogger("sanic.root")
RESPAWN_PAUSE_SEC = 5.0
LATE_STOP_SEC = 3.0
STOPPING_KEY = "codelace_stopping"  # a worker's mark in Sanic's shared worker state
# What stops `serve` gracefully: Ctrl-C, `kill`/systemd, and a hangup (the operator's terminal
# closed or an SSH session dropped: the whole foreground process group gets it, which killed
# every process at once, cutting the streams in flight uncharged) unless it was ignored when
# the process started (`nohup`): stop_signals().
STOP_SIGNALS = (SIGINT, SIGTERM, SIGHUP)


def stop_signals() -> tuple[int, ...]:
    """The stop signals this process heeds: SIGHUP only if it is not ignored (nohup, or the
    supervisor of a box started with nohup, whose workers inherit the ignoring)."""
    return tuple(s for s in STOP_SIGNALS if s != SIGHUP or getsignal(SIGHUP) != SIG_IGN)


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


# What this module overrides, calls or reads of Sanic, as (owner, attribute name).
SANIC_HOOKS: tuple[tuple[Any, str], ...] = (
    (sanic.mixins.startup, "WorkerManager"),
    (sanic.mixins.startup, "Manager"),
    (WorkerManager, "shutdown_signal"),
    (WorkerManager, "_all_workers_ack"),
    (WorkerManager, "_poll_monitor"),
    (WorkerManager, "_shutting_down"),
    (WorkerManager, "THRESHOLD"),
    (WorkerManager, "join"),
    (WorkerManager, "kill"),
    (WorkerManager, "monitor_subscriber"),
    (WorkerManager, "processes"),
    (WorkerManager, "shutdown"),
    (WorkerManager, "transient_processes"),
    (WorkerManager, "worker_state"),
    (MonitorCycle, "BREAK"),
    (WorkerProcess, "state"),
    (WorkerProcess, "set_state"),
    (WorkerProcess, "restart"),
    (WorkerProcess, "exitcode"),
    (WorkerProcess, "is_alive"),
    (ProcessState, "RESTARTING"),
    (ProcessState, "TERMINATED"),
    (ProcessState, "FAILED"),
    (ApplicationState, "is_running"),
    (ApplicationState, "server_info"),
    (Sanic, "_app_registry"),
    (StartupMixin, "m"),
    (WorkerMultiplexer, "state"),
)


def check_sanic_hooks(hooks: tuple[tuple[Any, str], ...] = SANIC_HOOKS) -> None:
    """Raise ConfigError (one line, naming the Sanic version) unless every hooked Sanic
    attribute exists; an attribute a class sets in its __init__ counts as existing."""
    missing = [
        f"{getattr(owner, '__name__', owner)}.{name}"
        for owner, name in hooks
        if not _has_attribute(owner, name)
    ]
    if missing:
        raise ConfigError(
            f"sanic {SANIC_VERSION} lacks {', '.join(missing)}, which codelace-box hooks (to stop "
            "cleanly, to bound slow clients): install the sanic version pyproject.toml allows "
            "(>=25.12.1,<25.13)"
        )


def _has_attribute(owner: Any, name: str) -> bool:
    if hasattr(owner, name):
        return True
    init = getattr(owner, "__init__", None) if isinstance(owner, type) else None
    code = getattr(init, "__code__", None)
    return code is not None and name in code.co_names  # e.g. self._shutting_down = False


class SignalSafeWorkerManager(WorkerManager):
    """A WorkerManager whose signal handler only records the request to stop."""

    early_signal: int | None = None  # a signal received before the manager existed
    hangup_stops = True  # SIGHUP was not ignored when `serve` started (install_supervisor)
    stop_signal: int | None = None
    killed = False  # by a second stop signal

    def __init__(self, number: int, *args: Any, **kwargs: Any) -> None:
        # Sanic's wait for the workers' start, in its loop's tenths of a second
        self.THRESHOLD = int(10 * ack_wait_sec(number, usable_cores()))
        super().__init__(number, *args, **kwargs)  # installs shutdown_signal (SIGINT, SIGTERM)
        if self.hangup_stops:  # ignored until now (install_supervisor)
            signal_func(SIGHUP, self.shutdown_signal)
        self.stop_signal = self.early_signal
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
        if self.stop_signal is not None:
            self._wait_for_workers_to_end()
        super().join()
        if self.killed:
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
    manager then starts, and at once stops, the workers. A hangup is ignored until then: an
    ignored signal stays ignored in the processes Sanic spawns meanwhile (its multiprocessing
    manager, which a hangup of the process group would otherwise kill under the supervisor).
    """
    startup: Any = sanic.mixins.startup
    startup.WorkerManager = SignalSafeWorkerManager
    startup.Manager = shared_state_manager
    for stop in (SIGINT, SIGTERM):
        signal_func(stop, _record_early_signal)
    SignalSafeWorkerManager.hangup_stops = SIGHUP in stop_signals()
    signal_func(SIGHUP, SIG_IGN)


def shared_state_manager() -> SyncManager:
    """multiprocessing.Manager() as Sanic starts it (the process holding the workers' shared
    state), tied to the supervisor as the workers are: a `kill -9` of the supervisor left it
    running, an orphan, for good (with multiprocessing's resource tracker, which waits for it)."""
    manager = SyncManager(ctx=multiprocessing.get_context())
    manager.start(initializer=stop_with_the_supervisor)
    return manager


class StopSafeSanic(Sanic):
    """Sanic whose `stop()` while a worker starts is carried out once it serves. Sanic installs
    its own SIGTERM/SIGINT handler (`app.stop`) once the server listens and runs the after-start
    listeners after that, the event loop already answering (a first `/healthz`): a stop that
    landed in between stopped the loop inside that start-up step, and the worker served on."""

    def stop(self, terminate: bool = True, unregister: bool = False) -> None:
        if getattr(self.ctx, "starting", False) and not self.state.is_running:
            _stop_when_serving(self, asyncio.get_event_loop())
            return
        super().stop(terminate=terminate, unregister=unregister)


def watch_worker_stops(app: Sanic) -> None:
    """Register the listeners that make a stop during a worker's start-up count."""
    app.before_server_start(_record_stops_while_starting)  # registered first: runs first
    app.after_server_start(_stop_once_serving_on_signal)


async def _record_stops_while_starting(app: Sanic) -> None:
    app.ctx.starting = True  # until the worker's own handlers are in place
    # `--workers 1`: the box is this process, and its /healthz answers 503 while it starts (a
    # worker of several answers at once: the box is up while the others serve)
    app.ctx.single_process = multiprocessing.parent_process() is None
    app.ctx.stop_signals = stop_signals()  # before ours replace an ignored SIGHUP
    _handle_stops(app, asyncio.get_running_loop())
    if not app.ctx.single_process:
        stop_with_the_supervisor()


async def _stop_once_serving_on_signal(app: Sanic) -> None:
    loop = asyncio.get_running_loop()
    for stop in app.ctx.stop_signals:  # in place of Sanic's handler (which stops at once)
        loop.add_signal_handler(stop, _stop_when_serving, app, loop, stop)
    _handle_stops(app, loop)  # again: uvloop's handler replaced ours
    app.ctx.starting = False


def _handle_stops(app: Sanic, loop: asyncio.AbstractEventLoop) -> None:
    """SIGINT, SIGTERM and SIGHUP, in Python, queue the stop for the loop. Installed as the worker
    starts (Sanic then ignores both for a moment, then hands them to its own handler:
    StopSafeSanic), and after uvloop's own, which drops a signal that comes while its loop is
    not running (between two start-up steps, or before `run_forever`: a SIGTERM right after
    the first `/healthz` answer was lost about one time in five). While the loop runs both
    handlers ask; the first stops."""
    for stop in app.ctx.stop_signals:
        signal_func(stop, partial(_signalled, app, loop))


def _signalled(
    app: Sanic, loop: asyncio.AbstractEventLoop, signal: int, frame: FrameType | None
) -> None:
    """A Python signal handler runs inside whatever the main thread ran, often a request's
    task: the stop is queued in a context of its own, not that request's (whose id its log
    lines would carry: logformat.REQUEST_ID)."""
    loop.call_soon_threadsafe(_stop_when_serving, app, loop, signal, context=Context())


def _stop_when_serving(
    app: Sanic, loop: asyncio.AbstractEventLoop, signal: int | None = None
) -> None:
    """Stop gracefully, once the worker serves (app.state.is_running is set just before its
    event loop starts serving; a stop before that would be swallowed by a start-up step).
    Only the first stop counts. The single process names the signal in the log, as the
    supervisor of several does."""
    if getattr(app.ctx, "stop_started", False):
        return
    app.ctx.stop_started = True
    if signal is not None and getattr(app.ctx, "single_process", False):
        log.info("Received signal %s. Shutting down.", Signals(signal).name)
    _mark_stopping(app)
    _stop_once_running(app, loop)


def _stop_once_running(app: Sanic, loop: asyncio.AbstractEventLoop) -> None:
    if app.state.is_running:
        app.stop(terminate=False)
    else:
        loop.call_later(0.02, _stop_once_running, app, loop)


def _mark_stopping(app: Sanic) -> None:
    """Tell the supervisor this worker got its stop (from the event loop, never from inside a
    signal handler: the shared state is a multiprocessing proxy, not safe to re-enter)."""
    with suppress(Exception):  # one process (--workers 1): no supervisor, nothing to tell
        app.m.state[STOPPING_KEY] = True
