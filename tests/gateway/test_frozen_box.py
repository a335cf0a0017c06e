"""A box that goes silent in the middle of its group commit (its machine lost, cut off the
network or paused: from PostgreSQL's side its session just stops talking) must not stop the
other boxes. Its transaction holds the lock every box's batch takes first (db/batch.py
BATCH_LOCK) and the rows it wrote; PostgreSQL would keep them until it noticed the session was
dead (the server's TCP keepalive: two hours by default), and every request on every other box
would meanwhile wait the 10 s lock timeout and fail with a 503 `database_busy`.

Here the silent box is a real `serve` process stopped with SIGSTOP (its socket stays open, as
a lost machine's does until someone notices) while one of its transactions is open: the other
box must answer its requests within a few seconds, and the stopped box, once resumed, serves
again on new sessions.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time

import httpx
import psycopg
import pytest

from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.gateway.bursts import CAP, FLAT
from tests.gateway.conftest import Box
from tests.gateway.test_many_boxes import boxes  # noqa: F401 - the three boxes on PostgreSQL

pytestmark = pytest.mark.timeout(180)
IN_A_TRANSACTION = (  # a session stopped inside a transaction, holding an advisory lock
    "SELECT COUNT(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND a.state = 'idle in transaction' "
    "AND a.datname = current_database()"
)
SERVED_WITHIN_SEC = 8.0  # under the 10 s lock timeout a waiting request fails after


def _chat(box: Box, key: str, timeout: float = 30) -> httpx.Response:
    body = {"model": FLAT, "messages": [{"role": "user", "content": "hi"}], "max_tokens": CAP}
    headers = {"authorization": f"Bearer {key}"}
    return httpx.post(f"{box.url}/v1/chat/completions", json=body, headers=headers,
                      timeout=timeout)  # fmt: skip


def _keep_busy(box: Box, key: str, stop: threading.Event) -> None:
    """Requests one after the other on `box` (four at a time) until `stop`."""

    def one_after_another() -> None:
        while not stop.is_set():
            with contextlib.suppress(httpx.HTTPError):  # the box is stopped under it
                _chat(box, key, timeout=2)

    for _ in range(4):
        threading.Thread(target=one_after_another, daemon=True).start()


def _stop_inside_a_transaction(pid: int, url: str) -> None:
    """SIGSTOP the process `pid` at a moment one of its sessions has a transaction open with
    an advisory lock (resuming and trying again until it is caught so)."""
    with psycopg.connect(url, autocommit=True) as watcher:
        for _ in range(300):
            os.kill(pid, signal.SIGSTOP)
            time.sleep(0.1)
            if watcher.execute(IN_A_TRANSACTION).fetchone()[0]:  # type: ignore[index]
                return
            os.kill(pid, signal.SIGCONT)
            time.sleep(0.02)
    pytest.fail("the box was never caught inside a transaction")


def test_a_box_gone_silent_inside_its_batch_stops_no_other_box(
    boxes: list[Box],  # noqa: F811
    fake: FakeOpenAI,
    pg_url: str,
) -> None:
    survivor, silent = boxes[0], boxes[2]
    assert silent.server.process is not None
    _, key = survivor.new_user("100")
    fake.default = Reply(completion_tokens_from_cap=True)
    stop = threading.Event()
    _keep_busy(silent, key, stop)
    try:
        time.sleep(0.5)
        _stop_inside_a_transaction(silent.server.process.pid, pg_url)
        stop.set()
        for _ in range(3):
            started = time.monotonic()
            answer = _chat(survivor, key)
            took = time.monotonic() - started
            assert answer.status_code == 200, answer.text
            assert took < SERVED_WITHIN_SEC, f"the survivor waited {took:.1f} s"
    finally:
        stop.set()
        os.kill(silent.server.process.pid, signal.SIGCONT)
    deadline = time.monotonic() + 10
    while (answer := _chat(silent, key)).status_code != 200:  # its session was ended: anew
        assert time.monotonic() < deadline, answer.text
        time.sleep(0.2)
    survivor.cli("doctor")
