"""How `serve` stops on SIGTERM/SIGINT (and SIGHUP, STOP_SIGNALS) at any moment, in each worker;
the supervisor of `serve --workers N` is supervisor.py.

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
import multiprocessing
from collections.abc import Callable
from contextlib import suppress
from contextvars import Context
from functools import partial
from signal import SIG_IGN, SIGHUP, SIGINT, SIGTERM, Signals, getsignal
from signal import signal as signal_func
from types import FrameType
from typing import Any

import sanic.mixins.startup
from sanic import Sanic
from sanic import __version__ as SANIC_VERSION
from sanic.application.state import ApplicationState
from sanic.mixins.startup import StartupMixin
from sanic.worker.constants import ProcessState
from sanic.worker.manager import MonitorCycle, WorkerManager
from sanic.worker.multiplexer import WorkerMultiplexer
from sanic.worker.process import WorkerProcess

from codelace_box.api.blueprint import ERROR_FORMAT
from codelace_box.errors import ConfigError
from codelace_box.launcher import stop_before_serving
from codelace_box.parent_death import stop_with_the_supervisor

log = logging.getLogger("sanic.root")
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


# What this module and supervisor.py override, call or read of Sanic, as (owner, attribute name).
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

    def _determine_error_format(self, handler: Callable[..., Any]) -> str:
        """JSON outright, as the blueprints' routes (api/blueprint.py says why)."""
        return ERROR_FORMAT


def stopped_before_serving() -> bool:
    """True when `serve` got a stop signal before it started serving (launcher.py
    hold_stops_until_serving): said as a later stop is, and nothing is started."""
    noted = stop_before_serving()
    if noted is not None:
        log.info("Received signal %s. Shutting down.", Signals(noted).name)
    return noted is not None


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
    if (noted := stop_before_serving()) is not None:  # `serve`'s one process: as it started
        _signalled(app, asyncio.get_running_loop(), noted, None)
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
    lines would carry: logformat.REQUEST_ID). A signal after the loop closed (the stop ran,
    the process is exiting: a SIGTERM to the whole group) has nothing left to stop."""
    with suppress(RuntimeError):  # "Event loop is closed": the worker exited 1 of it
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
