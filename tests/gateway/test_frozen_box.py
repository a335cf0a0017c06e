"""A box that goes silent between two statements of its group commit (its process paused,
its machine lost: from PostgreSQL's side its session just stops talking, idle inside its
transaction) must not stop the other boxes. Its transaction holds the lock every box's batch
takes first (db/batch.py BATCH_LOCK); PostgreSQL would keep it until it noticed the session was
dead (the server's TCP keepalive: two hours by default, never for a process paused on a live
machine), and every request on every other box would meanwhile wait the 10 s lock timeout and
fail with a 503 `database_busy`. A serving box's sessions end a transaction left idle for 5 s
(db/postgres.py IDLE_IN_TRANSACTION_MS).

The silent box here is a session set up as a serving box's (SERVING_SESSION_SQL), silenced
inside a transaction that holds the batch's lock, made so rather than caught by chance: the
running box must answer within a few seconds, and the server must have ended the silent
session.
"""

from __future__ import annotations

import time

import httpx
import psycopg
import pytest

from codelace_box.db.batch import BATCH_LOCK
from codelace_box.db.postgres import IDLE_IN_TRANSACTION_MS, SERVING_SESSION_SQL, XACT_LOCK_SQL
from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.gateway.bursts import CAP, FLAT
from tests.gateway.conftest import Box
from tests.gateway.test_many_boxes import boxes  # noqa: F401 - the three boxes on PostgreSQL
from tests.support import TLS

pytestmark = pytest.mark.timeout(180)
SERVED_WITHIN_SEC = 8.0  # under the 10 s lock timeout a waiting request fails after


def _chat(box: Box, key: str) -> httpx.Response:
    body = {"model": FLAT, "messages": [{"role": "user", "content": "hi"}], "max_tokens": CAP}
    headers = {"authorization": f"Bearer {key}"}
    return httpx.post(
        f"{box.url}/v1/chat/completions", json=body, headers=headers, timeout=30, verify=TLS
    )


def test_a_box_gone_silent_inside_its_batch_stops_no_other_box(
    boxes: list[Box],  # noqa: F811
    fake: FakeOpenAI,
    pg_url: str,
) -> None:
    survivor = boxes[0]
    _, key = survivor.new_user("100")
    fake.default = Reply(completion_tokens_from_cap=True)
    assert _chat(survivor, key).status_code == 200
    silent = psycopg.connect(pg_url)
    silent.execute(SERVING_SESSION_SQL)
    silent.execute(XACT_LOCK_SQL.replace("?", "%s"), (BATCH_LOCK,))  # BEGIN, then the lock
    started = time.monotonic()
    answer = _chat(survivor, key)
    took = time.monotonic() - started
    assert answer.status_code == 200, answer.text
    assert IDLE_IN_TRANSACTION_MS / 1000 - 0.5 < took < SERVED_WITHIN_SEC, took
    with pytest.raises(psycopg.errors.IdleInTransactionSessionTimeout):  # the server ended it
        silent.execute("SELECT 1")
    silent.close()
    for _ in range(3):  # and the box goes on at its own pace
        assert _chat(survivor, key).status_code == 200
    survivor.cli("doctor")
