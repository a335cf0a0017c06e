"""A stream whose settlement cannot have its account's row (another transaction holds it past
the 10 s lock timeout: an operator's, another box's) fails to settle, and is tried once more,
as its client has the output. Nothing waits for the database on the event loop meanwhile: the
second try ran on the loop itself, where it waited for the same lock, up to 10 s more, with
every request of the box (and what needs no database) held behind it."""

from __future__ import annotations

import threading
import time

import httpx
import psycopg
import pytest

from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.gateway.conftest import MODEL, Box
from tests.gateway.test_pg_unanswered import LOOP_FREE_SEC, LoopWatch
from tests.pg_cluster import wanted_engine
from tests.support import TLS, eventually

pytestmark = [
    pytest.mark.timeout(150),
    pytest.mark.skipif(wanted_engine() != "postgres", reason="PostgreSQL's row locks"),
]
LOCK_TIMEOUT_SEC = 10  # db/postgres.py LOCK_TIMEOUT_MS
PIECES = [f"word{n} " for n in range(6)]


def test_a_stream_whose_account_row_stays_locked_never_holds_the_loop(
    pg_box: Box, pg_url: str, fake: FakeOpenAI
) -> None:
    email, key = pg_box.new_user("10")
    fake.default = Reply(pieces=PIECES, piece_delay=0.2)
    body = {"model": MODEL, "stream": True, "max_tokens": 50,
            "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip
    ended: list[str] = []

    def stream() -> None:
        headers = {"authorization": f"Bearer {key}"}
        with httpx.stream("POST", f"{pg_box.url}/v1/chat/completions", json=body,
                          headers=headers, timeout=120, verify=TLS) as answer:  # fmt: skip
            ended.append(answer.read().decode())

    streaming = threading.Thread(target=stream)
    with psycopg.connect(pg_url) as elsewhere:  # its transaction holds the account's row
        streaming.start()
        eventually(lambda: fake.requests, "the stream admitted (its hold taken), relaying")
        elsewhere.execute('SELECT 1 FROM "user" WHERE email = %s FOR UPDATE', (email,))
        with LoopWatch(pg_box.url) as watch:
            time.sleep(2 * LOCK_TIMEOUT_SEC + 3)  # both tries wait for the lock
        elsewhere.rollback()
    streaming.join(60)
    assert ended and "database_busy" in ended[0], ended
    assert len(watch.took) >= 20 and max(watch.took) < LOOP_FREE_SEC, max(watch.took)
    held = pg_box.query('SELECT held_nanos FROM "user" WHERE email = ?', email)
    assert held != [(0,)]  # the hold stays for the sweep: no charge, as the stream was told
