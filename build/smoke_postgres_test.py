"""Smoke test of the single executable on PostgreSQL (`make binary-test`): the binary carries
the driver (psycopg's C implementation and its own libpq), `migrate`, `migrate --status`,
`doctor` and `db copy --to` work against a `database.url`, and `serve` on it answers a
completion and charges it.

The database is a throwaway cluster (tests/pg_cluster.py: initdb and pg_ctl on a private port,
as the `postgres` user when run as root). Outside CI a machine without PostgreSQL skips with
the reason; in CI (`CI` set) the test fails instead. The binary runs with PSYCOPG_IMPL=binary:
psycopg then refuses to fall back to the machine's libpq, so a build that lost its bundled
driver fails here even on a machine that has libpq installed.
"""

from __future__ import annotations

import sqlite3
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from smoke_support import BINARY, BinaryServer, binary_env, ok, run_binary

from codelace_box.db.migrate import LATEST_VERSION
from tests import pg_cluster
from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.pg_cluster import PgCluster, need_postgres, query_config_db, write_config_db
from tests.ports import free_port
from tests.support import write_config

SECRET = "smoke-test-shared-secret-of-the-boxes-000000"
EMAIL = "pg-smoke@example.com"
NANOS = 1_000_000_000

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def cluster() -> Iterator[PgCluster]:
    """A PostgreSQL cluster for the module (skips outside CI without PostgreSQL)."""
    if not BINARY.is_file():
        pytest.fail(f"{BINARY} does not exist: run `make binary` first")
    need_postgres()
    started = pg_cluster.TestCluster(free_port()).start()
    yield started
    started.stop()


def pg_box(folder: Path, url: str) -> tuple[Path, dict[str, str]]:
    """A config on the PostgreSQL `url` (its SQLite path set too, to show it stays unused),
    and the environment the binary runs in."""
    sections: dict[str, dict[str, Any]] = {
        "server": {"host": "127.0.0.1", "port": free_port(), "secret_key": SECRET},
        "database": {"url": url, "path": str(folder / "data" / "codelace.db")},
    }
    env = binary_env(folder / "tmp") | {"PSYCOPG_IMPL": "binary"}
    return write_config(folder / "codelace.toml", sections), env


def test_migrate_and_doctor_against_postgresql(tmp_path: Path, cluster: PgCluster) -> None:
    config, env = pg_box(tmp_path, cluster.new_database())
    cli = ["--config", str(config)]
    applied = ok(run_binary(tmp_path, *cli, "migrate", env=env))
    assert applied.strip() == (
        f"set up a new database at schema version {LATEST_VERSION} (all {LATEST_VERSION} "
        "migrations)"
    )
    assert ok(run_binary(tmp_path, *cli, "migrate", env=env)).strip() == (
        f"already at schema version {LATEST_VERSION}, nothing to do"
    )
    status = ok(run_binary(tmp_path, *cli, "migrate", "--status", env=env)).splitlines()
    assert status == [
        f"schema version {LATEST_VERSION} (this codelace-box knows up to {LATEST_VERSION})",
        "pending: none",
    ]
    stored = query_config_db(config, "SELECT MAX(version), COUNT(*) FROM schema_migration")
    assert stored == [(LATEST_VERSION, LATEST_VERSION)]

    # Something for doctor to check: a provider key to decrypt, a balance against its ledger.
    ok(run_binary(tmp_path, *cli, "users", "create", EMAIL, env=env))
    ok(run_binary(tmp_path, *cli, "credit", EMAIL, "7", "--reason", "smoke", env=env))
    provider = ["providers", "add", "acme", "--kind", "openai", "--base-url", "http://127.0.0.1:9"]
    ok(run_binary(tmp_path, *cli, *provider, "--key", "sk-pg-smoke-0001", env=env))
    doctor = ok(run_binary(tmp_path, *cli, "doctor", env=env))
    assert doctor.startswith(f"ok: schema version {LATEST_VERSION}, every balance matches"), doctor

    verbose = ok(run_binary(tmp_path, *cli, "version", "--verbose", env=env))
    assert "database engine: postgresql (psycopg 3." in verbose
    assert "binary implementation)" in verbose, "the binary must carry psycopg's C driver"
    assert f"database: postgresql://postgres@127.0.0.1:{cluster.port}/" in verbose
    assert not (tmp_path / "data" / "codelace.db").exists(), "nothing went to SQLite"


def test_doctor_refuses_a_postgresql_database_behind_the_schema(
    tmp_path: Path, cluster: PgCluster
) -> None:
    config, env = pg_box(tmp_path, cluster.new_database())
    cli = ["--config", str(config)]
    ok(run_binary(tmp_path, *cli, "migrate", env=env))
    write_config_db(config, "DELETE FROM schema_migration WHERE version = ?", [LATEST_VERSION])
    refused = run_binary(tmp_path, *cli, "doctor", env=env)
    assert refused.returncode == 1
    assert f"schema version {LATEST_VERSION - 1}, expected {LATEST_VERSION}" in refused.stdout


def test_db_copy_from_sqlite_to_postgresql_and_back(tmp_path: Path, cluster: PgCluster) -> None:
    lite = write_config(
        tmp_path / "sqlite.toml",
        {
            "server": {"host": "127.0.0.1", "port": free_port(), "secret_key": SECRET},
            "database": {"path": str(tmp_path / "lite" / "codelace.db")},
        },
    )
    env = binary_env(tmp_path / "tmp") | {"PSYCOPG_IMPL": "binary"}
    ok(run_binary(tmp_path, "--config", str(lite), "users", "create", EMAIL, env=env))
    ok(run_binary(tmp_path, "--config", str(lite), "credit", EMAIL, "3", "--reason", "x", env=env))

    url = cluster.new_database()
    copied = ok(run_binary(tmp_path, "--config", str(lite), "db", "copy", "--to", url, env=env))
    assert copied.startswith("copied ") and url in copied
    pg_config, _ = pg_box(tmp_path / "pg", url)
    doctor = ok(run_binary(tmp_path, "--config", str(pg_config), "doctor", env=env))
    assert doctor.startswith(f"ok: schema version {LATEST_VERSION}, every balance matches")
    balance = 'SELECT balance_nanos FROM "user" WHERE email = ?'
    assert query_config_db(pg_config, balance, [EMAIL]) == [(3 * NANOS,)]

    back = tmp_path / "back.db"
    to_back = ["db", "copy", "--to", f"sqlite:///{back}"]
    ok(run_binary(tmp_path, "--config", str(pg_config), *to_back, env=env))
    with sqlite3.connect(f"file:{back}?mode=ro", uri=True) as db:
        rows = db.execute('SELECT email, balance_nanos FROM "user"').fetchall()
    assert rows == [(EMAIL, 3 * NANOS)]


def test_serve_on_postgresql_answers_and_settles(tmp_path: Path, cluster: PgCluster) -> None:
    """The binary's hot path on PostgreSQL (the group commit's pipeline on libpq): a
    completion is answered and charged, and doctor agrees with what it wrote."""
    config, env = pg_box(tmp_path, cluster.new_database())
    cli = ["--config", str(config)]
    fake = FakeOpenAI().start()
    try:
        provider = ["providers", "add", "up", "--kind", "openai", "--base-url", fake.base_url]
        ok(run_binary(tmp_path, *cli, *provider, "--key", "sk-pg-smoke-0002", env=env))
        prices = ["--input-per-1m", "2", "--output-per-1m", "8", "--upstream-model", "m"]
        ok(run_binary(tmp_path, *cli, "models", "set", "up/m", *prices, env=env))
        ok(run_binary(tmp_path, *cli, "users", "create", EMAIL, env=env))
        ok(run_binary(tmp_path, *cli, "credit", EMAIL, "1", "--reason", "smoke", env=env))
        key = ok(run_binary(tmp_path, *cli, "keys", "create", EMAIL, env=env)).splitlines()[0]
        port = int(tomllib.loads(config.read_text())["server"]["port"])
        server = BinaryServer(config, port, env=env).start(wait=60)
        try:
            fake.push(Reply(content="From PostgreSQL.", prompt_tokens=1000, completion_tokens=500))
            body = {"model": "up/m", "messages": [{"role": "user", "content": "hi"}]}
            headers = {"authorization": f"Bearer {key}"}
            url = f"{server.base_url}/v1/chat/completions"
            answer = httpx.post(url, json=body, headers=headers)
            assert answer.status_code == 200, answer.text
            assert answer.json()["choices"][0]["message"]["content"] == "From PostgreSQL."
        finally:
            assert server.stop() == 0, server.log_text()
    finally:
        fake.stop()
    cost = 1000 * 2_000 + 500 * 8_000  # nano-USD at $2 and $8 per 1M tokens
    held = query_config_db(config, 'SELECT balance_nanos, held_nanos FROM "user"')
    assert held == [(NANOS - cost, 0)]
    doctor = ok(run_binary(tmp_path, *cli, "doctor", env=env))
    assert doctor.startswith(f"ok: schema version {LATEST_VERSION}, every balance matches")
