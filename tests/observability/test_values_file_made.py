"""A worker's metric values file, scraped by another worker while it is being made."""

from __future__ import annotations

import threading
from pathlib import Path

from prometheus_client import CollectorRegistry

from codelace_box.metric_files import AllocatedValues
from codelace_box.metric_fold import FoldingCollector


def test_a_scrape_never_meets_a_values_file_that_is_being_made(tmp_path: Path) -> None:
    """With several workers, /metrics on one worker reads every worker's values files. A worker
    makes each of its files when it first counts something of that kind (its first request,
    a replacement worker's start) while the others serve scrapes; the file was created empty
    and then given its bytes, so a scrape in between read an empty file, and prometheus_client
    failed it (struct.error: the scrape a 500). Every scrape now finds whole files."""
    folder = tmp_path / "metrics"
    folder.mkdir()
    collector = FoldingCollector(CollectorRegistry(), path=str(folder))
    stop = threading.Event()

    def start_workers() -> None:
        for pid in range(100_000, 101_500):
            AllocatedValues(str(folder / f"counter_{pid}.db")).close()
        stop.set()

    maker = threading.Thread(target=start_workers)
    maker.start()
    scrapes, failed = 0, []
    while not stop.is_set():
        scrapes += 1
        try:
            collector.collect()
        except Exception as exc:
            failed.append(repr(exc))
    maker.join()
    assert scrapes > 0
    assert failed == [], f"{len(failed)} of {scrapes} scrapes failed: {failed[:3]}"
