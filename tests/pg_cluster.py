"""The throwaway PostgreSQL cluster in the tests (bench/pgcluster.py: initdb + pg_ctl on a
private port and socket folder, as the `postgres` user, fsync off): one per test session (per
xdist worker, on a port of its slice), a fresh database per test.

`CODELACE_TEST_DATABASE=postgres` runs the box-starting fixtures on it instead of SQLite files.
Outside CI a machine without PostgreSQL skips these tests with the reason; in CI (`CI` set)
they fail instead, so a missing install cannot pass quietly.
"""

from __future__ import annotations

import atexit
import os
import re
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from bench.pgcluster import PgCluster, binary, missing_reason
from tests.ports import free_port


def wanted_engine() -> str:
    """The engine the box-starting fixtures use: sqlite (default) or postgres."""
    return os.environ.get("CODELACE_TEST_DATABASE", "sqlite").strip().lower() or "sqlite"


def need_postgres() -> None:
    """Skip (outside CI) or fail (in CI) when PostgreSQL cannot run here."""
    reason = missing_reason()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL is required in CI: {reason}")
    pytest.skip(reason)


class TestCluster(PgCluster):
    """The bench's cluster, its databases made over the driver (faster than psql, per test)."""

    def crash_and_start(self) -> None:
        """Stop the server as a crash would (`-m immediate`: what its WAL writer had not yet
        written is lost) and start it again, recovering what its log holds."""
        pg_ctl = binary("pg_ctl")
        assert pg_ctl
        self._run(pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop")
        self.start_again()

    def start_again(self) -> None:
        """Start the stopped server again, as `start()` did."""
        pg_ctl = binary("pg_ctl")
        assert pg_ctl
        settings = " ".join(f"-c {name}={value}" for name, value in self.settings.items())
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 {settings}"
        self._run(pg_ctl, "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "start")

    def new_database(self) -> str:
        import psycopg

        name = f"box_{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


_shared: list[PgCluster] = []
SHARED_SECRET = "codelace-test-shared-secret-for-every-box-0000"


def shared_cluster() -> PgCluster:
    """This process's cluster, started at first use and stopped at exit."""
    if not _shared:
        need_postgres()
        cluster = TestCluster(free_port()).start()
        atexit.register(cluster.stop)
        _shared.append(cluster)
    return _shared[0]


def use_engine(sections: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """A test config's sections on the wanted engine: with CODELACE_TEST_DATABASE=postgres a
    fresh database of the shared cluster (and the explicit secret PostgreSQL needs)."""
    if wanted_engine() == "postgres":
        url = shared_cluster().new_database()
        sections.setdefault("database", {})["url"] = url
        sections.setdefault("server", {}).setdefault("secret_key", secret_for(url))
    return sections


def secret_for(url: str) -> str:
    """The server secret of the boxes on one test database: shared by them, and another one
    for a box on another database (as two separate deployments would have)."""
    import hashlib

    return hashlib.sha256(url.encode()).hexdigest()


def query_config_db(config: Path, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Read the database a config names, beside its server (SQLite read-only, or PostgreSQL),
    `?` parameters on both."""
    import tomllib

    database = tomllib.loads(config.read_text()).get("database", {})
    if database.get("url", "").startswith("postgresql://"):
        import psycopg

        with psycopg.connect(database["url"], autocommit=True) as conn:
            return conn.execute(sql.replace("?", "%s"), tuple(params) or None).fetchall()
    uri = f"file:{database['path']}?mode=ro"
    with sqlite3.connect(uri, uri=True, timeout=10) as db:
        return db.execute(sql, tuple(params)).fetchall()


def write_config_db(config: Path, sql: str, params: Sequence[Any] = ()) -> None:
    """Change the database a config names, beside its server (as time would), `?` parameters
    on both engines; committed on return."""
    import tomllib

    database = tomllib.loads(config.read_text()).get("database", {})
    if database.get("url", "").startswith("postgresql://"):
        import psycopg

        with psycopg.connect(database["url"], autocommit=True) as conn:
            conn.execute(sql.replace("?", "%s"), tuple(params) or None)
        return
    with sqlite3.connect(database["path"], timeout=10) as db:
        db.execute(sql, tuple(params))


def query_config_dicts(config: Path, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """`query_config_db` with each row as {column: value}."""
    import tomllib

    database = tomllib.loads(config.read_text()).get("database", {})
    if database.get("url", "").startswith("postgresql://"):
        import psycopg
        from psycopg.rows import dict_row

        with psycopg.connect(database["url"], autocommit=True, row_factory=dict_row) as conn:
            return list(conn.execute(sql.replace("?", "%s"), tuple(params) or None).fetchall())
    with sqlite3.connect(f"file:{database['path']}?mode=ro", uri=True, timeout=10) as db:
        db.row_factory = sqlite3.Row
        return [dict(row) for row in db.execute(sql, tuple(params)).fetchall()]


def rows_as_text(config: Path) -> bool:
    """Whether a config's database is PostgreSQL (stored_bytes then holds its rows only)."""
    import tomllib

    database = tomllib.loads(config.read_text()).get("database", {})
    return str(database.get("url", "")).startswith("postgresql://")


def stored_bytes(config: Path) -> bytes:
    """Everything the database of a config stores, as bytes to scan for secrets: every row of
    every table as text, one field set apart from the next; for SQLite also its file and WAL
    as they lie on disk (where a deleted row's bytes stay until the page is used again)."""
    import tomllib

    database = tomllib.loads(config.read_text()).get("database", {})
    if rows_as_text(config):
        tables = query_config_db(
            config, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        )
        rows = [query_config_db(config, f'SELECT t::text FROM "{name}" t') for (name,) in tables]
        return "\n".join(str(row[0]) for table in rows for row in table).encode()
    db = Path(database["path"])
    files = (db, db.with_name(db.name + "-wal"))
    on_disk = b"".join(path.read_bytes() for path in files if path.exists())
    return on_disk + b"\n" + _sqlite_rows_as_text(config)


def _sqlite_rows_as_text(config: Path) -> bytes:
    """Every field of every row of a SQLite database, one per line."""
    tables = query_config_db(config, "SELECT name FROM sqlite_master WHERE type = 'table'")
    fields = (
        str(value)
        for (table,) in tables
        for row in query_config_dicts(config, f'SELECT * FROM "{table}"')
        for value in row.values()
    )
    return "\n".join(fields).encode()


# log_line_prefix's default ('%m [%p] '): the time, then the backend's pid
_LOGGED_STATEMENT = re.compile(r"\[(\d+)\] LOG:  (?:statement|execute [^:]*): (.*)")
_DURABLE = "SET LOCAL synchronous_commit = on"


def logged_statements_cluster() -> TestCluster:
    """A cluster of its own that logs every statement (log_statement = all), started."""
    need_postgres()
    return TestCluster(free_port(), {"log_statement": "all"}).start()


def durable_inserts(cluster: TestCluster, *tables: str) -> list[tuple[str, bool]]:
    """Each INSERT into one of `tables` in the cluster's statement log, in order: the table, and
    whether its transaction had turned synchronous_commit on before it (sessions told apart by
    their backend's pid)."""
    watched = re.compile(rf'INSERT INTO "?({"|".join(t.upper() for t in tables)})"?\b')
    durable: dict[str, bool] = {}
    seen: list[tuple[str, bool]] = []
    for pid, statement in _LOGGED_STATEMENT.findall(cluster.log.read_text(errors="replace")):
        words = statement.strip().rstrip(";").upper()
        if words in ("BEGIN", "COMMIT", "ROLLBACK"):
            durable[pid] = False
        elif statement.strip() == _DURABLE:
            durable[pid] = True
        elif match := watched.match(words):
            seen.append((match.group(1).lower(), durable.get(pid, False)))
    return seen


def let_sessions_in(url: str, allowed: bool) -> None:
    """Open or close the database of `url` to new sessions, and (closed) end those it has: an
    outage as the box sees it (a restart refuses new sessions at once, too)."""
    import psycopg  # PostgreSQL runs only

    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(url.replace(f"/{name}", "/postgres"), autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allowed).lower()}')
        if not allowed:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
