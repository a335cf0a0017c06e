"""Where a thread's metric increments go: inside a write, waiting for its COMMIT; on the
serving loop's thread, into plain sums (metric_sums.py); elsewhere, prometheus_client's own
children.

What a database write counts (a settlement's tokens and cost) is counted once its transaction
committed, and once: inside `counted_on_commit(into)` (the group commit, db/batch.py, around
each write) the counters' increments wait in `into`, which `count(into)` applies after the
COMMIT; a batch that is rolled back and run again (a deadlock between boxes) drops them.

On the serving loop's thread the increments are added up in plain numbers and handed to
prometheus_client together (metric_sums.py): every FLUSH_SEC and before a scrape with one
worker, at the end of each loop turn with several (so any worker's scrape sees them all).

A thread's state is one `_Counting`, read from a thread-local (about 530 instructions a read):
code that counts several things reads it once (`counting()`) and hands it to each family
(`Children.counted_by`, `Children.add`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from codelace_box.metric_sums import Sums

M = TypeVar("M")
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
FLUSH_SEC = 0.25  # one worker: its sums reach prometheus_client this often (and at a scrape)


class Children(Generic[M]):
    """A family's labelled children, looked up once (`labels()` takes a lock and builds its
    key on every call; a dict lookup here is a tenth of it, and label sets are bounded). On
    the serving loop's thread a child is its sum (metric_sums.py, `sum_on_this_thread`);
    inside a write its increments wait for the COMMIT (`counted_on_commit`)."""

    __slots__ = ("_children", "_family", "_later", "_sums")

    def __init__(self, family: Any) -> None:
        self._family = family
        self._children: dict[tuple[str, ...], M] = {}
        self._sums: dict[tuple[str, ...], Any] = {}
        self._later: dict[tuple[str, ...], _Later] = {}
        _FAMILIES.append(self)

    def __call__(self, *labels: str) -> M:
        return self.counted_by(_here.counting, labels)

    def add(self, counting: _Counting, labels: tuple[str, ...], amount: float = 1) -> None:
        """`counted_by(counting, labels).inc(amount)`, inside a write without the waiting
        child's second read of the thread's state (`counting()`, read once by the caller)."""
        into = counting.into
        if into is None:
            self.counted_by(counting, labels).inc(amount)  # type: ignore[attr-defined]
        else:
            into.append((self._later_for(labels), "inc", amount))

    def counted_by(self, counting: _Counting, labels: tuple[str, ...]) -> M:
        """The child to count into, for a thread counting so."""
        if counting.into is not None:  # inside a write: counted after its COMMIT
            return self._later_for(labels)  # type: ignore[return-value]
        sums = counting.sums
        if sums is not None:
            found = self._sums.get(labels)
            if found is None:
                found = self._sums[labels] = sums.new(self.child(labels))
            return found
        return self.child(labels)

    def _later_for(self, labels: tuple[str, ...]) -> _Later:
        later = self._later.get(labels)
        if later is None:
            later = self._later[labels] = _Later(self, labels)
        return later

    def forget_sums(self) -> None:
        self._sums.clear()

    def child(self, labels: tuple[str, ...]) -> M:
        """prometheus_client's own child for these labels."""
        child = self._children.get(labels)
        if child is None:
            child = self._children[labels] = self._family.labels(*labels)
        return child


Increment = tuple["_Later", str, float]  # whose, "inc" or "observe", the amount
_FAMILIES: list[Children[Any]] = []


class _Counting:
    """Where a thread's increments go."""

    __slots__ = ("into", "sums")

    def __init__(self) -> None:
        self.into: list[Increment] | None = None  # inside a write (`counted_on_commit`)
        self.sums: Sums | None = None  # the serving loop's thread (`sum_on_this_thread`)


class _Here(threading.local):
    """This thread's `_Counting`: one object, so that a count reads the thread-local once,
    and applying a batch's increments once for all (a read of a threading.local costs about
    530 instructions, a plain attribute's a tenth: 8 reads a chat completion fewer)."""

    def __init__(self) -> None:
        self.counting = _Counting()


_here = _Here()


def counting() -> _Counting:
    """This thread's state, for `Children.counted_by` and `Children.add` (one read of the
    thread-local for all a function counts)."""
    return _here.counting


class _Later:
    """A child whose increments wait in this thread's list (`counted_on_commit`); `count`
    applies them to `family`'s child for `labels` on the thread that counts them then."""

    __slots__ = ("family", "labels")

    def __init__(self, family: Children[Any], labels: tuple[str, ...]) -> None:
        self.family, self.labels = family, labels

    def inc(self, amount: float = 1) -> None:
        _here.counting.into.append((self, "inc", amount))  # type: ignore[union-attr]

    def observe(self, amount: float) -> None:
        _here.counting.into.append((self, "observe", amount))  # type: ignore[union-attr]


class counted_on_commit:
    """Inside (on this thread): the metrics' increments wait in `into` (see the module doc).
    A class, not a generator: it runs once per batch on the hot path."""

    __slots__ = ("_before", "_counting", "_into")

    def __init__(self, into: list[Increment]) -> None:
        self._into = into
        self._before: list[Increment] | None = None

    def __enter__(self) -> None:
        counting = self._counting = _here.counting  # this thread's: the `with` leaves on it
        self._before, counting.into = counting.into, self._into

    def __exit__(self, *exc: object) -> None:
        self._counting.into = self._before


def count(increments: Sequence[Increment]) -> None:
    """Apply increments that waited (their transaction committed): one refused (a counter
    lowered) is logged, never raised, as the writes are done."""
    if not increments:  # (an admission's batch counts none: no read of the thread's state)
        return
    counting = _here.counting
    for later, method, amount in increments:
        try:  # (the child looked up here: no Python call of the waiting child's own)
            getattr(later.family.counted_by(counting, later.labels), method)(amount)
        except ValueError:
            logging.getLogger("codelace_box.metrics").exception("a metric refused %r", amount)


def sum_on_this_thread(loop: asyncio.AbstractEventLoop) -> Sums:
    """From now on this thread's (the serving loop's) increments are added up in plain numbers
    and handed to prometheus_client together: with several workers at the end of the loop's
    turn (another worker's scrape reads them at once), with one every FLUSH_SEC and before
    every scrape. Other threads keep prometheus_client's own (locked) children."""
    every_turn = bool(os.environ.get(MULTIPROC_ENV))
    stop_summing()  # an earlier loop's (tests serve more than once in a process)
    sums = _here.counting.sums = Sums(loop, 0.0 if every_turn else FLUSH_SEC)
    return sums


def stop_summing() -> None:
    """Hand this thread's sums over and add up no more here (its loop is stopping)."""
    flush()
    _here.counting.sums = None
    for family in _FAMILIES:
        family.forget_sums()


def flush() -> None:
    """Hand this thread's sums to prometheus_client now (before a scrape, when stopping)."""
    sums = _here.counting.sums
    if sums is not None:
        sums.flush()
