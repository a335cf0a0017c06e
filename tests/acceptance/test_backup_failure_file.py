"""The failed-backup file beside the database, read by doctor while serve rewrites it."""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path

from codelace_box.upkeep.backups import last_failure, record_failure


def test_doctor_never_reads_a_half_written_failure_while_serve_writes_the_next(
    tmp_path: Path,
) -> None:
    """serve writes the file again at every retry of a failing backup (every 10 ticks); it was
    truncated and then written, so a doctor reading it in between found it empty and said
    'cannot read ...' instead of 'the last scheduled backup failed at ...' (CI saw it once).
    Every read after the first write finds a whole failure."""
    db_path = str(tmp_path / "codelace.db")
    record_failure(db_path, datetime(2026, 12, 7, 12, 0, 0), "backup.dir: Not a directory")
    stop = threading.Event()

    def write_again() -> None:
        for second in range(4000):
            when = datetime(2026, 12, 7, 12, second // 60 % 60, second % 60)
            record_failure(db_path, when, "backup.dir: Not a directory")
        stop.set()

    writer = threading.Thread(target=write_again)
    writer.start()
    reads = torn = 0
    while not stop.is_set():
        reads += 1
        torn += last_failure(db_path) is None
    writer.join()
    assert reads > 0
    assert torn == 0, f"{torn} of {reads} reads found no failure while it was rewritten"
