"""`serve --workers 3` with usage.retention_days: one worker (the lead, as for the upkeep)
deletes the old usage rows, not each worker at once (every worker ran its own passes, each
holding the write lock in turn against the requests, and the log told the count in pieces)."""

from __future__ import annotations

import re
import time

import pytest

from tests.gateway.conftest import MODEL, Box, BoxFactory
from tests.pg_cluster import wanted_engine, write_config_db

pytestmark = pytest.mark.timeout(120)
OLD_ROWS = 20_000  # 40 batches: seconds of passes, which three workers' passes overlapped
HELLO = [{"role": "user", "content": "Hi"}]


def _age_and_multiply(box: Box, copies: int) -> None:
    """The box's one usage row, made 40 days old and copied to `copies` rows (the box stopped)."""
    if wanted_engine() == "postgres":
        names = "SELECT column_name FROM information_schema.columns WHERE table_name = ?"
        aged = "created_at - INTERVAL '40 days'"
    else:
        names, aged = "SELECT name FROM pragma_table_info(?)", "datetime(created_at, '-40 days')"
    columns = [name for (name,) in box.query(names, "usage_record") if name != "id"]
    values = [
        {"request_id": "request_id || '-' || n", "created_at": aged}.get(name, name)
        for name in columns
    ]
    write_config_db(
        box.config,
        "INSERT INTO usage_record (" + ", ".join(columns) + ") "
        "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < ?) "
        "SELECT " + ", ".join(values) + " FROM usage_record, c",
        (copies,),
    )


def test_one_worker_deletes_the_old_usage_rows(box_factory: BoxFactory) -> None:
    box = box_factory()
    _, key = box.new_user("5")
    with box.http(key) as http:
        assert http.post(
            "/v1/chat/completions", json={"model": MODEL, "messages": HELLO}
        ).is_success
    box.server.stop()
    _age_and_multiply(box, OLD_ROWS)
    box.config.write_text(box.config.read_text() + "\n[usage]\nretention_days = 30\n")
    box.server.start("--workers", "3")
    box.server.wait_for_log(r"Worker ready \[(\d+)\]", 3)
    deadline = time.monotonic() + 60
    while box.query("SELECT COUNT(*) FROM usage_record") != [(1,)]:  # the row of today stays
        assert time.monotonic() < deadline, "retention never deleted the old rows"
        time.sleep(0.2)
    box.server.wait_for_log(r"retention: deleted \d+ usage rows")  # logged after its commit
    time.sleep(1)  # any other worker's pass, for the count below
    told = [
        int(n) for n in re.findall(r"retention: deleted (\d+) usage rows", box.server.log_text())
    ]
    assert told == [OLD_ROWS], told
