"""How `serve` stops on SIGTERM/SIGINT at any moment, in the supervisor and in each worker.

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
serves on until the supervisor gives up after 10 s). Here such a stop is recorded and carried
out as soon as the worker serves (see watch_worker_stops).
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from signal import SIGINT, SIGTERM, Signals
from signal import signal as signal_func
from types import FrameType
from typing import Any

import sanic.mixins.startup
from sanic import Sanic
from sanic.exceptions import ServerKilled
from sanic.worker.manager import MonitorCycle, WorkerManager

log = logging.getLogger("sanic.root")


class SignalSafeWorkerManager(WorkerManager):
    """A WorkerManager whose signal handler only records the request to stop."""

    early_signal: int | None = None  # a signal received before the manager existed
    stop_signal: int | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # installs shutdown_signal as the handler
        self.stop_signal = self.early_signal

    def shutdown_signal(self, signal: int, frame: FrameType | None) -> None:
        """Record the first stop signal; a second one kills every worker at once."""
        if self.stop_signal is not None or self._shutting_down:
            log.info("Shutdown interrupted. Killing.")
            with suppress(ServerKilled):
                self.kill()
            return
        self.stop_signal = signal

    def _all_workers_ack(self) -> bool:
        # Waiting for the workers' start-up acknowledgement ends when a stop is requested.
        return self.stop_signal is not None or bool(super()._all_workers_ack())

    def _poll_monitor(self) -> MonitorCycle | None:
        if self.stop_signal is not None and not self._shutting_down:
            log.info("Received signal %s. Shutting down.", Signals(self.stop_signal).name)
            self.shutdown()
            return MonitorCycle.BREAK
        return super()._poll_monitor()


def _record_early_signal(signal: int, frame: FrameType | None) -> None:
    SignalSafeWorkerManager.early_signal = signal


def install_supervisor() -> None:
    """Make Sanic.serve (multi-worker mode) supervise its workers with SignalSafeWorkerManager.

    Until the manager exists (Sanic first starts its multiprocessing manager process), a stop
    signal is recorded rather than killing the supervisor and orphaning that process; the
    manager then starts, and at once stops, the workers.
    """
    startup: Any = sanic.mixins.startup
    startup.WorkerManager = SignalSafeWorkerManager
    for stop in (SIGINT, SIGTERM):
        signal_func(stop, _record_early_signal)


def watch_worker_stops(app: Sanic) -> None:
    """Register the listeners that make a stop during a worker's start-up count."""
    app.before_server_start(_record_stops_while_starting)  # registered first: runs first
    app.after_server_start(_stop_once_serving_on_signal)


async def _record_stops_while_starting(app: Sanic) -> None:
    app.ctx.stop_asked = False

    def record(signal: int, frame: FrameType | None) -> None:
        app.ctx.stop_asked = True

    for stop in (SIGINT, SIGTERM):
        signal_func(stop, record)


async def _stop_once_serving_on_signal(app: Sanic) -> None:
    loop = asyncio.get_running_loop()
    for stop in (SIGINT, SIGTERM):  # in place of Sanic's handler (which stops at once)
        loop.add_signal_handler(stop, _stop_when_serving, app, loop)
    if app.ctx.stop_asked:
        _stop_when_serving(app, loop)


def _stop_when_serving(app: Sanic, loop: asyncio.AbstractEventLoop) -> None:
    """Stop gracefully, once the worker serves (app.state.is_running is set just before its
    event loop starts serving; a stop before that would be swallowed by a start-up step)."""
    if app.state.is_running:
        app.stop(terminate=False)
    else:
        loop.call_later(0.02, _stop_when_serving, app, loop)
