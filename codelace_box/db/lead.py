"""Which worker of a serve (and, on PostgreSQL, which box of all those on the database) does a
periodic job that must run once, not once per worker: the one holding a lock file in the data
folder (flock, dropped by the kernel when its process ends however it ends) and leading the
job's role among the boxes (db/owners.py lead_across_boxes). Another takes over within a tick
of the lead's end."""

from __future__ import annotations

import hashlib
from pathlib import Path

from codelace_box.config.schema import DatabaseConfig
from codelace_box.db.offload import run_in_db_thread
from codelace_box.db.openlock import OpenMarker, try_lead
from codelace_box.db.owners import lead_across_boxes
from codelace_box.db.postgres import redacted


def lead_file(database: DatabaseConfig, role: str) -> Path:
    """The lock file electing one process for a job of this database. A SQLite file's is beside
    it, named after it (`codelace.db.upkeep.lock`); a PostgreSQL database's is in the data
    folder, named after its URL (a digest of it without its password: the lead among boxes is
    the database's own, this only picks among a machine's processes). One named after the
    folder (`upkeep.lock`) was shared by the boxes of every database in it: the second box
    never led, so it took no scheduled backup, sent no alert, probed no failing key and pruned
    no history."""
    path = Path(database.path).resolve()
    if not database.is_postgres:
        return path.with_name(f"{path.name}.{role}.lock")
    digest = hashlib.sha256(redacted(database.url).encode()).hexdigest()[:16]
    return path.with_name(f"{role}-{digest}.lock")


class Lead:
    """This process's bid for one job's lead: `held()` asks (taking it when free) each tick."""

    def __init__(self, lock_file: Path, role: str) -> None:
        self.lock_file, self.role = lock_file, role
        self.marker: OpenMarker | None = None

    async def held(self) -> bool:
        """Whether this process leads the job now (the file lock once taken is kept; the lead
        among boxes is asked on the database thread, whose session holds it)."""
        if self.marker is None:
            self.marker = try_lead(self.lock_file)
            if self.marker is None:
                return False
        return bool(await run_in_db_thread(lead_across_boxes, self.role))

    def release(self) -> None:
        """Let another process lead (its process stops)."""
        if self.marker is not None:
            self.marker.release()
            self.marker = None
