"""A dead worker's counters and histograms folded into one values file per kind, so a box whose
workers die again and again (an OOM loop) keeps a bounded metrics folder.

prometheus_client's multiprocess mode keeps every writer's `counter_PID.db` and
`histogram_PID.db` for ever (what a dead worker counted happened: it stays in the scrape), at
64 KiB or more each, and every scrape reads them all. When a worker has died (the supervisor,
before it starts the replacement: metrics.forget_worker), its values are added into
`counter_folded.db` and `histogram_folded.db` (written whole under another name, then renamed)
and its own files removed. Scrapes read the folder under a shared lock and a fold holds it
exclusively, so no scrape sees a dead worker's counts twice, or not at all, or a file going
away under it. With no room to write the folded file, the dead worker's files stay as before.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.multiprocess import MultiProcessCollector

from codelace_box.metric_files import AllocatedValues

KINDS = ("counter", "histogram")  # gauges: live ones leave with their process (livesum)
FOLDED = "folded"
LOCK_FILE = "fold.lock"  # not *.db: prometheus_client reads only those


@contextlib.contextmanager
def _locked(folder: str, how: int) -> Iterator[None]:
    fd = os.open(os.path.join(folder, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, how)
        yield
    finally:
        os.close(fd)  # and the lock with it


def fold_dead_worker(folder: str, pid: int) -> None:
    """Add a dead worker's counters and histograms into the folded files; remove its own."""
    with _locked(folder, fcntl.LOCK_EX):
        for kind in KINDS:
            dead = Path(folder) / f"{kind}_{pid}.db"
            if dead.exists():
                _fold(dead, Path(folder) / f"{kind}_{FOLDED}.db")


def _fold(dead: Path, into: Path) -> None:
    sums: dict[str, tuple[float, float]] = {}
    sources = [into, dead] if into.exists() else [dead]
    for source in sources:
        for key, value, timestamp, _ in MmapedDict.read_all_values_from_file(str(source)):
            had, when = sums.get(key, (0.0, 0.0))
            sums[key] = (had + value, max(when, timestamp))
    staged = into.with_name(f".{into.name}.new")
    staged.unlink(missing_ok=True)
    written = AllocatedValues(str(staged))
    try:
        for key, (value, timestamp) in sums.items():
            written.write_value(key, value, timestamp)
        whole = written.holds_every_value
    finally:
        written.close()
    if not whole:  # no room: the dead worker's files stay, counted as before
        staged.unlink(missing_ok=True)
        return
    staged.replace(into)
    dead.unlink()


class FoldingCollector(MultiProcessCollector):
    """prometheus_client's collector over the folder, reading it while no fold runs."""

    def collect(self) -> Iterable[Any]:
        with _locked(self._path, fcntl.LOCK_SH):
            return list(super().collect())
