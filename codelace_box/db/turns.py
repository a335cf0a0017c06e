"""A batch's writes as steps, and a batch run in turns without savepoints (db/batch.py).

A write may return its steps (a generator) instead of its value: it yields (None) once the
statements whose answers it waits for are sent; see `run_interleaved`. It yields ALONE when
what it still has to write is what a later write's first turn reads (in turns that batch runs
again careful; run alone, the write goes on).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator
from functools import partial
from inspect import CO_GENERATOR
from types import CodeType, FunctionType, GeneratorType  # (not the ABC: 1,700 instructions)
from typing import Any, TypeVar

from codelace_box.db.core import Tx
from codelace_box.db.failures import conflict

T = TypeVar("T")
Write = Callable[[Tx], Any]  # runs statements in the open transaction, returns a value
ALONE = "alone"
Steps = Generator[str | None, None, T]
Pending = list[tuple[Write, asyncio.Future[Any]]]
Outcome = tuple[asyncio.Future[Any], Any, BaseException | None]  # future, value, error


class RunAgain(Exception):
    """A write failed in a batch run without savepoints."""


def run_steps(steps: Steps[T]) -> T:
    """Run a write's steps to their end, in order (its answers waited for as it reads them):
    how a write runs alone, or in its savepoint."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


def run_whole(write: Write, tx: Tx) -> Any:
    """A write (plain, or its steps run to their end) and what it gave."""
    value = write(tx)
    return run_steps(value) if isinstance(value, GeneratorType) else value


def run_interleaved(tx: Tx, pending: Pending) -> list[Outcome]:
    """The batch without savepoints: each write runs up to its first yield (its statements
    sent), then every one on to its next, and so on: on PostgreSQL (pipelined) the answers the
    writes wait for come back together, one round trip for the batch instead of one a write;
    on SQLite, two statements a write fewer than in savepoints (a plain write, which runs
    whole, waits for the steps queued before it to end). A write
    reads before it yields what later writes must see done (db/hotpath.py `Later`); one that
    finds it has more of that to write after its yield says so (ALONE).
    Any error makes the batch run again carefully (the error may be an earlier write's, and
    what the write did before it is in the transaction); a conflict, again as it was."""
    values: list[Any] = [None] * len(pending)
    running: list[tuple[int, Steps[Any]]] = []
    for index, (write, _) in enumerate(pending):
        if running and not _is_steps(write):  # a plain write runs whole when called: after
            _turns(running, values)  # the steps queued before it (in the queue's order)
        try:  # (in place, not a helper's call: a Python call a write fewer)
            value = write(tx)
        except Exception as exc:
            if conflict(exc):
                raise
            raise RunAgain from exc
        if isinstance(value, GeneratorType):
            running.append((index, value))
        else:
            values[index] = value
    _turns(running, values)
    return [(future, values[index], None) for index, (_, future) in enumerate(pending)]


def _is_steps(write: Write) -> bool:
    """Whether a write gives steps (a generator function, a method or a partial of one); a
    write that cannot tell is taken as plain (the steps before it then end first: slower, as
    correct). inspect.isgeneratorfunction's answer from the code's flags (its five Python
    calls a write were about 0.5% of a call's instructions at 16 concurrent)."""
    if type(write) is partial and type(write.func) is FunctionType:  # the request path's
        return bool(write.func.__code__.co_flags & CO_GENERATOR)  # writes, read at once
    func: Any = write
    while isinstance(func, partial):
        func = func.func
    code = getattr(func, "__code__", None)  # a function's, or a bound method's function's
    return isinstance(code, CodeType) and bool(code.co_flags & CO_GENERATOR)


def _turns(running: list[tuple[int, Steps[Any]]], values: list[Any]) -> None:
    """Run the steps in turns to their ends, each one's value in `values`; empties `running`.
    A step's error is as a write's first call's: RunAgain, a conflict as it was."""
    while running:
        going: list[tuple[int, Steps[Any]]] = []
        for index, steps in running:
            try:
                said = next(steps)
            except StopIteration as done:
                values[index] = done.value
                continue
            except Exception as exc:
                if conflict(exc):
                    raise
                raise RunAgain from exc
            if said == ALONE:
                raise RunAgain("a write must run before the later writes' first turns")
            going.append((index, steps))
        running[:] = going
