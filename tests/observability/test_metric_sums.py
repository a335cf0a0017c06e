"""The metrics' sums on the serving loop's thread (metric_sums.py): handed over, they give the
same figures prometheus_client gives for the same increments one by one; they reach it after
the delay, at the end of the turn with several workers, before a scrape, and never twice;
other threads and writes that wait for their COMMIT keep their own ways."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram

from codelace_box import metrics
from codelace_box.metric_sums import has_histogram_parts

BUCKETS = (0.001, 0.01, 0.1, 1.0)
# below the first bound, on bounds (a value on a bound is in that bucket), between, above all
VALUES = (0.0, 0.0005, 0.001, 0.0010001, 0.05, 0.1, 0.7, 1.0, 3.5, 1e9, -2.0)


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in registry.collect()
        for s in family.samples
        if not s.name.endswith("_created")
    }


def requests(registry: CollectorRegistry) -> float:
    """What the test counter counted for route /a so far (0 before its child exists)."""
    return registry.get_sample_value("t_requests_total", {"route": "/a"}) or 0.0


def families() -> tuple[CollectorRegistry, metrics.Children[Counter], metrics.Children[Histogram]]:
    registry = CollectorRegistry()
    counter = Counter("t_requests", "test", ["route"], registry=registry)
    histogram = Histogram("t_seconds", "test", ["route"], buckets=BUCKETS, registry=registry)
    return registry, metrics.Children(counter), metrics.Children(histogram)


def on_own_loop(body: object, environ_several: bool = False) -> None:
    """Run the coroutine function `body` on a loop in a thread of its own that sums (the
    thread's state ends with it: the other tests' threads are untouched)."""
    errors: list[BaseException] = []

    async def main() -> None:
        metrics.sum_on_this_thread(asyncio.get_running_loop())
        try:
            await body()  # type: ignore[operator]
        finally:
            metrics.stop_summing()

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # raised again on the test's thread
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    if errors:
        raise errors[0]


@pytest.fixture
def one_worker(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(metrics.MULTIPROC_ENV, raising=False)
    yield


def test_prometheus_client_still_has_the_histogram_parts_the_sums_use() -> None:
    assert has_histogram_parts(Histogram("h", "h", buckets=BUCKETS, registry=None))


def test_summed_figures_equal_prometheus_clients_own(one_worker: None) -> None:
    summed, counter, histogram = families()
    direct, counter_direct, histogram_direct = families()

    async def body() -> None:
        for value in VALUES:
            histogram("/a").observe(value)
            counter("/a").inc(value if value > 0 else 1)
        counter("/b").inc()
        metrics.flush()

    on_own_loop(body)
    for value in VALUES:
        histogram_direct("/a").observe(value)
        counter_direct("/a").inc(value if value > 0 else 1)
    counter_direct("/b").inc()
    assert samples(summed) == pytest.approx(samples(direct))
    assert samples(summed)[("t_seconds_bucket", (("le", "0.001"), ("route", "/a")))] == 4
    assert samples(summed)[("t_seconds_count", (("route", "/a"),))] == len(VALUES)


def test_sums_reach_prometheus_client_after_the_delay_and_only_once(one_worker: None) -> None:
    registry, counter, histogram = families()
    seen: list[float] = []

    async def body() -> None:
        for _ in range(3):
            counter("/a").inc()
            histogram("/a").observe(0.5)
        await asyncio.sleep(0)
        seen.append(requests(registry))  # not yet: the delay
        await asyncio.sleep(metrics.FLUSH_SEC * 2)
        seen.append(requests(registry))
        counter("/a").inc(2)
        metrics.flush()  # what a scrape does first
        seen.append(requests(registry))
        await asyncio.sleep(metrics.FLUSH_SEC * 2)  # the timer finds nothing more to add
        seen.append(requests(registry))

    on_own_loop(body)
    assert seen == [0.0, 3.0, 5.0, 5.0]
    assert registry.get_sample_value("t_seconds_count", {"route": "/a"}) == 3


def test_several_workers_hand_over_at_the_end_of_the_turn(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(tmp_path))
    registry, counter, _ = families()
    seen: list[float] = []

    async def body() -> None:
        counter("/a").inc()
        seen.append(requests(registry))
        await asyncio.sleep(0)
        seen.append(requests(registry))

    on_own_loop(body)
    assert seen == [0.0, 1.0]


def test_other_threads_count_at_once_and_writes_wait_for_their_commit(one_worker: None) -> None:
    registry, counter, _ = families()
    seen: list[float] = []

    async def body() -> None:
        waiting: list[metrics.Increment] = []
        with metrics.counted_on_commit(waiting):
            counter("/a").inc(4)
        seen.append(requests(registry))  # waits for the COMMIT
        on_another = threading.Thread(target=lambda: counter("/a").inc(10))
        on_another.start()
        on_another.join()
        seen.append(requests(registry))  # the other thread's child counted at once
        metrics.count(waiting)  # committed: summed here, on the loop's thread
        seen.append(requests(registry))
        metrics.flush()
        seen.append(requests(registry))

    on_own_loop(body)
    assert seen == [0.0, 10.0, 10.0, 14.0]


def test_a_counter_sum_refuses_to_go_down(one_worker: None) -> None:
    registry, counter, _ = families()

    async def body() -> None:
        with pytest.raises(ValueError, match="non-negative"):
            counter("/a").inc(-1)
        waiting: list[metrics.Increment] = []
        with metrics.counted_on_commit(waiting):
            counter("/a").inc(-1)  # counted once committed: refused then
            counter("/a").inc(2)
        metrics.count(waiting)
        metrics.flush()

    on_own_loop(body)  # a refused increment that waited is logged, the next still counts
    assert registry.get_sample_value("t_requests_total", {"route": "/a"}) == 2.0


def test_add_with_the_state_read_once_waits_for_the_commit_as_a_child_does(
    one_worker: None,
) -> None:
    """`Children.add` (a settlement's counts, the thread's state read once by the caller)
    counts as `counted_by(...).inc` does: inside a write, nothing before the COMMIT's `count`,
    then once; outside, summed on the loop's thread."""
    registry, counter, _ = families()
    seen: list[float] = []

    async def body() -> None:
        waiting: list[metrics.Increment] = []
        with metrics.counted_on_commit(waiting):
            counting = metrics.counting()
            counter.add(counting, ("/a",), 3)
            counter.add(counting, ("/a",))
        metrics.flush()
        seen.append(requests(registry))  # waits for the COMMIT
        metrics.count(waiting)
        metrics.flush()
        seen.append(requests(registry))
        counter.add(metrics.counting(), ("/a",), 5)  # outside a write: a sum of the loop's
        seen.append(requests(registry))
        metrics.flush()
        seen.append(requests(registry))

    on_own_loop(body)
    assert seen == [0.0, 4.0, 4.0, 9.0]
