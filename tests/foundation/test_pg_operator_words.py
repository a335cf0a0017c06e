"""What an operator's command says on PostgreSQL when a lock it needs stays held by another
session (another box's transaction, a psql session left open): PostgreSQL's words, not
SQLite's."""

from __future__ import annotations

from pathlib import Path

import psycopg

from codelace_box.accounts.users import create_user
from codelace_box.db.core import close_database, open_database
from codelace_box.db.migrate import migrate
from tests.support import run_cli, write_config

SECRET = "a-shared-secret-for-every-box-000000000000"


def test_a_lock_held_by_a_psql_session_is_named_as_postgresqls_not_a_sqlite3_shell(
    tmp_path: Path, pg_url: str
) -> None:
    """A credit whose user's row a psql session holds (an open transaction) waits the lock
    timeout and is refused, nothing done; it pointed at 'an open sqlite3 shell transaction'
    and 'its write', which on PostgreSQL sent the operator looking for a file that is not
    there."""
    migrate(open_database(pg_url))
    create_user("locked@example.com")
    close_database()
    config = write_config(
        tmp_path / "pg.toml", {"database": {"url": pg_url}, "server": {"secret_key": SECRET}}
    )
    with psycopg.connect(pg_url) as psql:
        psql.execute('SELECT id FROM "user" FOR UPDATE')
        refused = run_cli(config, "credit", "locked@example.com", "5", "--reason", "locked")
    assert refused.returncode == 1
    [line] = refused.stderr.splitlines()
    assert "sqlite3" not in line, line
    assert line.startswith("error: the database is locked by another session"), line
    assert "nothing was done; try again" in line, line
    assert "pg_stat_activity" in line, line
    done = run_cli(config, "credit", "locked@example.com", "5", "--reason", "unlocked")
    assert done.returncode == 0, done.stderr
