"""Online backup with SQLite's backup API: a consistent copy while other processes write."""

from __future__ import annotations

import os
from pathlib import Path

import apsw

from codelace_box.errors import CodelaceError

PAGES_PER_STEP = 256


def backup_database(source_path: str, target_path: str) -> int:
    """Copy the live database at source_path to target_path; returns the pages copied."""
    target = Path(target_path)
    if target.exists():
        raise CodelaceError(f"{target} already exists; choose a new file")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    source = apsw.Connection(source_path, flags=apsw.SQLITE_OPEN_READONLY)
    source.setbusytimeout(10_000)
    destination = apsw.Connection(str(partial))
    try:
        with destination.backup("main", source, "main") as job:
            while not job.done:
                job.step(PAGES_PER_STEP)
            pages = job.pagecount
        check = destination.execute("PRAGMA integrity_check").fetchone()
        if check is None or check[0] != "ok":
            raise CodelaceError(f"backup failed its integrity check: {check}")
        destination.execute("PRAGMA journal_mode=DELETE")
    finally:
        destination.close()
        source.close()
    os.replace(partial, target)
    return int(pages)
