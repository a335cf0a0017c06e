"""A box on PostgreSQL that serves for weeks loses sessions now and then (a restart, a
failover, a proxy's idle cut) and opens new ones: what it kept for a lost session (the
psycopg connection, its prepared statements) must go with it, not pile up for ever."""

from __future__ import annotations

import gc

import psycopg
import pytest

from codelace_box.db.core import query_all

pytestmark = pytest.mark.timeout(60)
DROPS = 40


def _drop_other_sessions(url: str) -> None:
    """End every other session of the database (this process's), as a failover does, and
    wait until each has ended (up to 10 s): a bare pg_terminate_backend only signals it, and on
    a busy machine the next query could still find it alive."""
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


def _live_connections() -> int:
    gc.collect()
    return sum(1 for obj in gc.get_objects() if isinstance(obj, psycopg.Connection))


def test_sessions_the_server_dropped_are_not_kept(pg_db: str) -> None:
    assert query_all("SELECT 1") == [(1,)]
    before = _live_connections()
    for _ in range(DROPS):
        _drop_other_sessions(pg_db)
        with pytest.raises(psycopg.OperationalError):  # the loss, seen once (serve: a 503)
            query_all("SELECT 1")
        assert query_all("SELECT 1") == [(1,)]  # a new session
    assert _live_connections() <= before
