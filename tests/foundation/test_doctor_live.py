"""`doctor` on a box that is serving: its checks read the database at one instant, so a
settlement committed between two of its statements is no mismatch."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx

from codelace_box.config import load_config
from codelace_box.config.secret import read_secret_file
from codelace_box.db.core import close_database
from codelace_box.doctor import check_database, open_existing_database
from tests.fakes.openai_upstream import FakeOpenAI
from tests.foundation.test_disk_trouble import metered_box
from tests.support import TLS, ServerProcess


def _keep_calling(url: str, key: str, stop: threading.Event, calls: list[int]) -> None:
    body = {"model": "fake/m", "messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(headers={"authorization": f"Bearer {key}"}, timeout=30, verify=TLS) as client:
        while not stop.is_set():
            assert client.post(url, json=body).status_code == 200
            calls.append(1)


def test_doctor_during_traffic_finds_nothing_wrong(tmp_path: Path) -> None:
    """The usage totals, the accounts' days and the rollups were read by separate statements:
    a settlement committed between them made doctor report a mismatch on a healthy box."""
    fake = FakeOpenAI().start()
    space, port, key = metered_box(tmp_path / "box", fake.base_url)
    server = ServerProcess(space.config, port)
    stop, calls = threading.Event(), []
    workers = [
        threading.Thread(
            target=_keep_calling,
            args=(server.base_url + "/v1/chat/completions", key, stop, calls),
        )
        for _ in range(3)
    ]
    problems: list[str] = []
    try:
        server.start()
        for worker in workers:
            worker.start()
        secret = read_secret_file(space.db_path.parent / "secret_key")
        db = open_existing_database(load_config(str(space.config)))
        deadline = time.monotonic() + 60
        checks = 0
        try:  # until enough settlements were committed meanwhile, however loaded the machine
            while checks < 150 or len(calls) < 100:
                assert time.monotonic() < deadline, (checks, len(calls))
                problems += check_database(db, secret)[1]
                checks += 1
        finally:
            close_database()
    finally:
        stop.set()
        for worker in workers:
            worker.join()
        server.stop()
        fake.stop()
    assert problems == []
