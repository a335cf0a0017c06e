"""db/lookups.py: calls queued while the lookup thread runs a batch make its next batch, each
caller gets its own entry (a value, or the exception it raises), and a caller that left is
skipped."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence

import pytest

from codelace_box.db.lookups import LookupQueue
from codelace_box.db.offload import DbThread


def _doubled(items: Sequence[int]) -> list[int | ValueError]:
    return [item * 2 if item >= 0 else ValueError(f"no lookup for {item}") for item in items]


async def _until(condition: Callable[[], object], what: str) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(what)


async def test_calls_made_while_a_batch_runs_are_the_next_batch() -> None:
    thread = DbThread("test-lookup")
    release = threading.Event()
    batches: list[list[int]] = []

    def fn_many(items: Sequence[int]) -> list[int | ValueError]:
        batches.append(list(items))
        if len(batches) == 1:
            release.wait(5)
        return _doubled(items)

    queue = LookupQueue(thread, fn_many)
    try:
        first = asyncio.ensure_future(queue.call(1))
        await _until(lambda: batches, "the first batch never started")
        rest = [asyncio.ensure_future(queue.call(item)) for item in (2, 3, -1, 4)]
        left = rest.pop()
        await asyncio.sleep(0.05)
        left.cancel()
        release.set()
        assert await first == 2
        assert await rest[0] == 4 and await rest[1] == 6
        with pytest.raises(ValueError, match="no lookup for -1"):
            await rest[2]
        assert batches == [[1], [2, 3, -1, 4]]
        assert await queue.call(5) == 10  # a new batch starts once the thread is idle
        assert batches[-1] == [5]
    finally:
        release.set()
        thread.stop()


async def test_a_batch_that_fails_fails_each_of_its_callers() -> None:
    thread = DbThread("test-lookup")

    def broken(items: Sequence[int]) -> list[int]:
        raise ConnectionError("the server went away")

    queue = LookupQueue(thread, broken)
    try:
        for item in (1, 2):
            with pytest.raises(ConnectionError, match="went away"):
                await queue.call(item)
    finally:
        thread.stop()
