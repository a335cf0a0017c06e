"""The work threads of requests' own database work on PostgreSQL (db/offload.py WorkThreads)
when the server has fewer sessions to give than there are threads (`max_connections` or a
role's CONNECTION LIMIT): a thread the server refused a session is not picked while another
has one, and an item that found no session to open runs on a thread that has one, not a 503."""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import peewee
import psycopg
import pytest

from bench.pgcluster import PgCluster
from codelace_box.db.core import close_database, database, open_database
from codelace_box.db.offload import WorkThreads
from tests.pg_cluster import let_sessions_in

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def few_sessions(pg_url: str) -> Iterator[str]:
    """A URL of the test database as a role of its own allowed 2 sessions at once, opened in
    this process (whose own thread holds one of them: one is left for the work threads)."""
    role = f"few_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{role}" LOGIN CONNECTION LIMIT 2')
    url = pg_url.replace("postgres@", f"{role}@", 1)
    assert urlsplit(url).username == role
    open_database(url)
    try:
        yield url
    finally:
        close_database()


def _backend() -> int:
    """This thread's session's server process id."""
    return int(database.execute_sql("SELECT pg_backend_pid()").fetchone()[0])


async def _two_at_once(threads: WorkThreads) -> tuple[int, int]:
    """The sessions two calls ran on, the second sent while the first ran: one (it queued
    behind the first) or two."""
    opened, release = threading.Event(), threading.Event()

    def hold() -> int:
        pid = _backend()
        opened.set()
        assert release.wait(20)
        return pid

    held = asyncio.ensure_future(threads.run(hold))
    assert await asyncio.to_thread(opened.wait, 20)
    other = asyncio.ensure_future(threads.run(_backend))
    await asyncio.sleep(0.2)
    release.set()
    first, second = await asyncio.gather(held, other)
    return first, second


def _refusals(cluster: PgCluster, url: str) -> int:
    """How many sessions the server refused the role of `url` (its log's lines)."""
    said = f'too many connections for role "{urlsplit(url).username}"'
    return cluster.log.read_text(errors="replace").count(said)


async def test_a_thread_refused_a_session_is_not_picked_while_another_has_one(
    few_sessions: str, pg_cluster: PgCluster
) -> None:
    threads = WorkThreads(3, "test-work")
    opened, release = threading.Event(), threading.Event()

    def hold() -> int:
        pid = _backend()
        opened.set()
        assert release.wait(20)
        return pid

    try:
        for _ in range(4):  # each time one call holds the only session, another one comes
            opened.clear()
            release.clear()
            held = asyncio.ensure_future(threads.run(hold))
            assert await asyncio.to_thread(opened.wait, 20)
            other = asyncio.ensure_future(threads.run(_backend))
            await asyncio.sleep(0.2)  # (the other call, answered or queued, either way)
            release.set()
            results = await asyncio.gather(held, other, return_exceptions=True)
            assert results[0] == results[1], results  # queued behind it, on its session
        serial = [await threads.run(_backend) for _ in range(6)]
        assert set(serial) == {results[0]}, serial
        assert _refusals(pg_cluster, few_sessions) == 2  # each other thread tried once, no more
    finally:
        threads.stop()


async def test_ties_go_in_turn_to_the_threads_with_a_live_session(pg_url: str) -> None:
    open_database(pg_url)
    threads = WorkThreads(3, "test-work")
    opened, release = threading.Event(), threading.Event()

    def hold() -> int:
        pid = _backend()
        opened.set()
        assert release.wait(20)
        return pid

    try:
        held = asyncio.ensure_future(threads.run(hold))
        assert await asyncio.to_thread(opened.wait, 20)
        second = await threads.run(_backend)  # the first thread busy: a second session
        release.set()
        first = await held
        serial = [await threads.run(_backend) for _ in range(4)]
        assert first != second and sorted(serial) == sorted([first, second] * 2), serial
        assert serial[0] != serial[1], serial  # in turn, not always the first
    finally:
        threads.stop()
        close_database()


async def test_a_thread_refused_a_session_is_tried_again_once_the_server_gives_more(
    few_sessions: str, pg_url: str
) -> None:
    threads = WorkThreads(2, "test-work", retry_refused_sec=0.5)
    try:
        first, second = await _two_at_once(threads)
        assert first == second  # the second thread refused: the call ran on the first
        role = urlsplit(few_sessions).username
        with psycopg.connect(pg_url, autocommit=True) as admin:  # a short blip, now over
            admin.execute(f'ALTER ROLE "{role}" CONNECTION LIMIT 10')
        await asyncio.sleep(0.6)
        first, second = await _two_at_once(threads)
        assert first != second  # the other thread has a session of its own again
    finally:
        threads.stop()


async def test_once_the_database_is_back_every_thread_is_used_again_and_the_outage_said_once(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """After an outage every thread tried during it was refused, and the first to open a
    session again was the only one used for 30 s (the others set aside, as for a server short
    of sessions): one call waiting for a row lock held back all the worker's account calls.
    Once a thread opens a session again the database is back: the others are tried again at
    once. The outage is one line of the worker's log, and its end one more."""
    open_database(pg_url)
    threads = WorkThreads(3, "test-work")  # the 30 s of the box
    caplog.set_level(logging.INFO, logger="codelace_box.db")
    try:
        first, second = await _two_at_once(threads)
        assert first != second  # two threads with a session each
        let_sessions_in(pg_url, False)
        await asyncio.sleep(0.3)  # the sessions seen ended: each call opens a new one
        try:
            for _ in range(4):  # every thread tried, each refused
                with pytest.raises(peewee.OperationalError, match="not currently accepting"):
                    await threads.run(_backend)
        finally:
            let_sessions_in(pg_url, True)
        first, second = await _two_at_once(threads)
        assert first != second  # the second call on another thread, not queued behind
        said = [r.getMessage() for r in caplog.records if r.name == "codelace_box.db"]
        refused = [line for line in said if "refused the work threads" in line]
        back = [line for line in said if "sessions again" in line]
        assert len(refused) == 1 and len(back) == 1, said
        assert "is not currently accepting connections" in refused[0], refused
    finally:
        threads.stop()
        close_database()
