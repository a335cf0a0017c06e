"""The WAL file after a long read held it (a backup of a large database, an auditor's query)
while writes went on: SQLite could not start the WAL over meanwhile, so it grew by every write
of that time, and once the read ended it was reused from its start but never made smaller: a
box that once ran a ten-minute backup under load kept gigabytes of WAL on its data disk until
its next restart. Now the first write after it started over cuts it back to the size the
serving box's checkpoints let it reach anyway (db/sqlite_file.py, journal_size_limit)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from tests.fakes.openai_upstream import FakeOpenAI
from tests.foundation.test_disk_trouble import metered_box
from tests.support import TLS, ServerProcess

pytestmark = pytest.mark.timeout(120)
LIMIT = 96 * 1024 * 1024
GROWN_MB = 120  # past the limit


def test_the_wal_a_long_read_let_grow_is_cut_back_once_it_ended(tmp_path: Path) -> None:
    fake = FakeOpenAI().start()
    space, port, key = metered_box(tmp_path / "box", fake.base_url)
    server = ServerProcess(space.config, port)
    wal = Path(f"{space.db_path}-wal")
    headers = {"authorization": f"Bearer {key}"}
    body = {"model": "fake/m", "messages": [{"role": "user", "content": "hi"}]}
    try:
        server.start()
        reading = sqlite3.connect(space.db_path)
        reading.execute("BEGIN")
        reading.execute("SELECT COUNT(*) FROM ledger_entry").fetchall()  # holds the WAL
        writing = sqlite3.connect(space.db_path, timeout=10)
        writing.execute("CREATE TABLE grown (data BLOB)")
        for _ in range(GROWN_MB):
            writing.execute("INSERT INTO grown VALUES (randomblob(1000000))")
            writing.commit()
        writing.execute("DROP TABLE grown")
        writing.commit()
        writing.close()
        assert wal.stat().st_size > GROWN_MB * 1_000_000
        reading.rollback()
        reading.close()
        deadline = time.monotonic() + 20
        while wal.stat().st_size > LIMIT:  # the box's checkpoints catch up, then it writes
            assert time.monotonic() < deadline, f"the WAL stays {wal.stat().st_size} bytes"
            answer = httpx.post(server.base_url + "/v1/chat/completions", json=body,
                                headers=headers, timeout=30, verify=TLS)  # fmt: skip
            assert answer.status_code == 200, answer.text
            time.sleep(0.3)
    finally:
        assert server.stop() == 0
        fake.stop()
    assert space.run("doctor").stdout.startswith("ok: ")
