"""A scheduled backup of a big database when serve is told to stop: serve stops promptly, the
unfinished copy is removed, and no file claiming to be a good backup is left."""

from __future__ import annotations

import errno
import os
import signal
import time
from pathlib import Path

import apsw
import pytest

from tests.acceptance.cli_tools import Box
from tests.support import ServerProcess

pytestmark = pytest.mark.timeout(180)
FAST_TICK = {"CODELACE_UPKEEP_TICK_SEC": "0.2"}
ROWS = 500_000  # ~63 MiB with two indexes: its copy's integrity check takes seconds


def _grow(db_path: Path) -> None:
    """A table of ROWS indexed rows beside the box's own (a database with a long history)."""
    db = apsw.Connection(str(db_path))
    try:
        db.execute("CREATE TABLE history_filler (a INTEGER PRIMARY KEY, s TEXT, t TEXT)")
        db.execute("CREATE INDEX history_filler_s ON history_filler (s)")
        db.execute("CREATE INDEX history_filler_t ON history_filler (t)")
        db.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
            "INSERT INTO history_filler SELECT i, hex(randomblob(16)), hex(randomblob(8)) FROM n",
            (ROWS,),
        )
    finally:
        db.close()


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_stopped_during_a_backup_stops_at_once_and_leaves_no_copy(
    tmp_path: Path, workers: int
) -> None:
    """SIGTERM while serve wrote a scheduled backup of a big database: serve said it had
    stopped, then its process went on until the copy's check ended (40 s on a 400 MiB
    database here; systemd's TimeoutStopSec kills it first on a bigger one), and then left
    the finished backup behind. The backup's thread now stops with the serve."""
    box = Box.create(tmp_path / "box", backup={"every_hours": 1, "keep": 2})
    box.ok("users", "create", "gus@upkeep.test")
    _grow(box.db_path)
    folder = box.root / "data" / "backups"
    server = ServerProcess(box.config, box.port, env=FAST_TICK)
    server.start("--workers", str(workers))
    try:
        deadline = time.monotonic() + 30
        while not list(folder.glob("*.partial")):
            assert time.monotonic() < deadline, "no backup started"
            time.sleep(0.01)
        assert server.process is not None
        asked = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(60) == 0
        took = time.monotonic() - asked
    finally:
        server.kill()
    # A two-worker stop took 6.5 s on a loaded CI machine: the bound is the one of every stop
    # (test_server_stopping); that the copy was stopped at once, the log line and no copy say.
    assert took < 15, f"serve took {took:.1f} s to stop during a backup"
    left = sorted(p.name for p in folder.iterdir())
    assert left == [], f"a backup cut off by the stop left {left}"
    assert "the scheduled backup was stopped: serve is stopping" in server.log_text()


def test_a_stop_while_no_backup_runs_does_not_say_one_was_stopped(tmp_path: Path) -> None:
    """SIGTERM while the upkeep looked at backup.dir (a slow or hung mount; here its owner
    file is a FIFO that nothing writes yet), no backup being due: the log said "the
    scheduled backup was stopped" whatever the backup's thread did (nothing, here; or a copy
    it finished, or one that failed). It now says what the thread ended with."""
    box = Box.create(tmp_path / "box", backup={"every_hours": 1, "keep": 2})
    folder = box.root / "data" / "backups"
    folder.mkdir(parents=True)
    (folder / f"codelace-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.db").write_bytes(b"")
    owner = folder / ".codelace-backups-of"
    os.mkfifo(owner)
    server = ServerProcess(box.config, box.port, env=FAST_TICK)
    server.start("--workers", "1")
    try:
        writer = _once_read(owner)  # the upkeep's first look waits on the owner file
        assert server.process is not None
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        with os.fdopen(writer, "w") as answer:  # the mount answers: this database's folder
            answer.write(str(box.db_path.resolve()) + "\n")
        assert server.process.wait(30) == 0
    finally:
        server.kill()
    log = server.log_text()
    assert "the scheduled backup was stopped" not in log, log
    assert "scheduled backup failed" not in log, log


def _once_read(fifo: Path, wait: float = 30) -> int:
    """A descriptor writing to `fifo` once a reader has it open (the upkeep's look at the
    folder). A fixed second let a loaded machine's upkeep come later, after the stop: nothing
    ever read the FIFO, and the test's write to it waited for ever."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:  # ENXIO: no reader yet
            assert exc.errno == errno.ENXIO and time.monotonic() < deadline, exc
        time.sleep(0.02)
