"""The deadlines of the upstreams' answer heads: one timer for all the calls of a client.

The head of an answer is due within the connect timeout and twice the read timeout
(`UpstreamClient`); every call waits for one, so a timer made and cancelled for each call
(uvloop's `call_later` and `cancel`, about 4,000 instructions) was work of every call. The
deadlines of one client have one delay, so they fall due in the order they began: one timer,
set for the earliest and set again for the next when it fires, serves them all.
"""

from __future__ import annotations

import asyncio
from typing import Any

CLOCK_MARGIN_SEC = 0.001  # uvloop's clock and timers count milliseconds


class HeadDeadline:
    """The answer's head timeout as `asyncio.timeout` keeps one, without its two coroutines and
    its states (about 2 us a call): at the deadline it cancels the task; `end()`, on every way
    out, drops the deadline and takes back a cancellation of its own, and says whether the
    deadline's was the only one (a task also cancelled from elsewhere, its client gone or
    the server stopping, stays cancelled). Its timer is its client's (`HeadDeadlines`)."""

    __slots__ = ("_cancelling", "_due", "_fired", "_task")

    def __init__(self, task: asyncio.Task[Any], due: dict[HeadDeadline, float]) -> None:
        self._task, self._cancelling, self._fired, self._due = task, task.cancelling(), False, due

    def fire(self) -> None:
        self._fired = True
        self._task.cancel()

    def end(self) -> bool:
        """True when the deadline passed and nothing else cancelled the task."""
        self._due.pop(self, None)
        return self._fired and self._task.uncancel() <= self._cancelling


class HeadDeadlines:
    """The head deadlines of one client's calls, all of one delay, so due in the order they
    began (a dict keeps that order): one timer for the earliest, set again when it fires,
    instead of a timer made and cancelled for every call (about 4,000 instructions a call).
    A deadline fires at its own moment (within the loop clock's millisecond)."""

    __slots__ = ("_delay_sec", "_due", "_loop", "_timer")

    def __init__(self, loop: asyncio.AbstractEventLoop, delay_sec: float) -> None:
        self._loop, self._delay_sec = loop, delay_sec
        self._due: dict[HeadDeadline, float] = {}
        self._timer: asyncio.TimerHandle | None = None

    def begin(self, task: asyncio.Task[Any]) -> HeadDeadline:
        """The deadline of an answer's head the task now waits for."""
        deadline = HeadDeadline(task, self._due)
        self._due[deadline] = due = self._loop.time() + self._delay_sec
        if self._timer is None:
            self._timer = self._loop.call_at(due, self._fire)
        return deadline

    def _fire(self) -> None:
        """Fire the deadlines due (a millisecond's margin: the loop's clock), then wait for
        the next one, if any."""
        self._timer = None
        due, now = self._due, self._loop.time() + CLOCK_MARGIN_SEC
        while due:
            deadline = next(iter(due))
            if due[deadline] > now:
                self._timer = self._loop.call_at(due[deadline], self._fire)
                return
            del due[deadline]
            deadline.fire()

    def close(self) -> None:
        """Stop the timer (the client closes)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
