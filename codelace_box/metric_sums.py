"""Metric increments added up in plain numbers on the serving loop's thread, then handed to
prometheus_client's children together.

prometheus_client takes a lock for every increment, and a histogram walks its bounds for
every observation: together a twentieth of a request's instructions. Here an increment is an
addition to a float (a histogram's bucket is found by bisection); the sums reach
prometheus_client, one call per child, at the end of the loop's turn or every few tenths of a
second (`Sums`). Only the loop's thread adds up here, so nothing is shared between threads.

A histogram's sums are handed over through its child's `_sum`, `_buckets` and
`_upper_bounds`, prometheus_client's own parts (it has no public way to add a count to a
bucket); `has_histogram_parts` checks a child has them, and without them the child is observed
the library's way. (Checked on the real children: a probe histogram of its own would, with
several workers, leave a values file that every scrape then showed as a metric.)
tests/observability/test_metric_sums.py holds the two ways to the same figures.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from bisect import bisect_left
from typing import Any

from prometheus_client import Histogram

log = logging.getLogger("codelace_box.metrics")
HISTOGRAM_PARTS = ("_sum", "_buckets", "_upper_bounds")


def has_histogram_parts(child: Any) -> bool:
    """Whether a histogram child has the parts the hand-over uses."""
    return all(hasattr(child, part) for part in HISTOGRAM_PARTS)


class Sums:
    """The sums of one loop's thread waiting to be handed over, and when they will be."""

    __slots__ = ("_delay", "_loop", "_scheduled", "_waiting")

    def __init__(self, loop: asyncio.AbstractEventLoop, delay: float) -> None:
        self._loop, self._delay = loop, delay
        self._waiting: list[CounterSum | HistogramSum] = []
        self._scheduled = False

    def new(self, child: Any) -> Any:
        """What adds up for prometheus_client's `child` (a histogram without the parts this
        relies on: the child itself)."""
        if isinstance(child, Histogram):
            return HistogramSum(child, self) if has_histogram_parts(child) else child
        return CounterSum(child, self)

    def waiting(self, item: CounterSum | HistogramSum) -> None:
        """`item` has something to hand over: at the end of this turn, or after the delay."""
        self._waiting.append(item)
        if not self._scheduled:
            self._scheduled = True
            fresh = contextvars.Context()  # every request's sums: its lines name none
            if self._delay:
                self._loop.call_later(self._delay, self.flush, context=fresh)
            else:
                self._loop.call_soon(self.flush, context=fresh)

    def flush(self) -> None:
        """Hand every sum over now."""
        self._scheduled = False
        waiting, self._waiting = self._waiting, []
        for item in waiting:
            try:
                item.hand_over()
            except Exception:  # one child failing (its values file) must not lose the others
                log.exception("a metric could not take its sums")


class CounterSum:
    """A counter child's increments since the last hand-over."""

    __slots__ = ("_amount", "_child", "_sums", "_waiting")

    def __init__(self, child: Any, sums: Sums) -> None:
        self._child, self._sums = child, sums
        self._amount: float = 0
        self._waiting = False

    def inc(self, amount: float = 1) -> None:
        if amount < 0:  # as prometheus_client refuses it
            raise ValueError("Counters can only be incremented by non-negative amounts.")
        self._amount += amount
        if not self._waiting:
            self._waiting = True
            self._sums.waiting(self)

    def hand_over(self) -> None:
        amount, self._amount, self._waiting = self._amount, 0, False
        self._child.inc(amount)


class HistogramSum:
    """A histogram child's observations since the last hand-over: a count per bucket, a sum."""

    __slots__ = ("_bounds", "_child", "_counts", "_sum", "_sums", "_waiting")

    def __init__(self, child: Any, sums: Sums) -> None:
        self._child, self._sums = child, sums
        self._bounds: list[float] = list(child._upper_bounds)  # the last is +Inf
        self._counts = [0] * len(self._bounds)
        self._sum = 0.0
        self._waiting = False

    def observe(self, amount: float) -> None:
        self._counts[bisect_left(self._bounds, amount)] += 1  # the first bound >= amount
        self._sum += amount
        if not self._waiting:
            self._waiting = True
            self._sums.waiting(self)

    def hand_over(self) -> None:
        child, counts = self._child, self._counts
        child._sum.inc(self._sum)
        for bucket, count in zip(child._buckets, counts, strict=True):
            if count:
                bucket.inc(count)
        self._counts, self._sum, self._waiting = [0] * len(counts), 0.0, False
