"""On PostgreSQL the box's sessions commit with synchronous_commit = off: a crash of the server
may lose the last instants' commits. What cuts someone's access must not be among them: a key
revoked (its user told 204, perhaps because it leaked), an account disabled, a key's spend
limit or an account's request limits lowered, or a portal session signed out must not come back
when the server recovers from a crash right after.

The cluster is the test's own, its WAL writer slowed down (wal_writer_delay = 10 s), so that a
commit made without synchronous_commit is still in the server's memory when it is stopped as a
crash would (`pg_ctl stop -m immediate`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import pg_cluster
from tests.accounts.conftest import console_code
from tests.pg_cluster import SHARED_SECRET, need_postgres, query_config_db, wanted_engine
from tests.support import TLS, ServerProcess, free_port, run_cli, write_config

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(wanted_engine() != "postgres", reason="PostgreSQL's commit setting"),
]


@pytest.fixture(scope="module")
def slow_wal_cluster() -> Iterator[pg_cluster.TestCluster]:
    """A cluster of this module's own whose WAL writer writes every 10 s only (each test on a
    database of its own)."""
    need_postgres()
    cluster = pg_cluster.TestCluster(free_port(), {"wal_writer_delay": "10s"}).start()
    try:
        yield cluster
    finally:
        cluster.stop()


def _new_key(config: Path, email: str) -> str:
    assert run_cli(config, "users", "create", email).returncode == 0
    made = run_cli(config, "keys", "create", email)
    assert made.returncode == 0, made.stderr
    return made.stdout.strip().splitlines()[0]


def _box(cluster: pg_cluster.TestCluster, tmp_path: Path) -> tuple[Path, ServerProcess]:
    """The config of a box on a new database of `cluster`, and its server (not started)."""
    port = free_port()
    sections = {
        "server": {"host": "127.0.0.1", "port": port, "secret_key": SHARED_SECRET},
        "database": {"path": str(tmp_path / "data" / "box.db"), "url": cluster.new_database()},
    }
    config = write_config(tmp_path / "codelace.toml", sections)
    return config, ServerProcess(config, port)


def test_a_revoked_key_and_a_disabled_account_survive_a_crash_of_the_server(
    slow_wal_cluster: pg_cluster.TestCluster, tmp_path: Path
) -> None:
    config, server = _box(slow_wal_cluster, tmp_path)
    leaked = _new_key(config, "leaked@crash.test")
    _new_key(config, "gone@crash.test")
    server.start()
    try:
        with httpx.Client(base_url=server.base_url, timeout=30, verify=TLS) as http:
            bearer = {"authorization": f"Bearer {leaked}"}
            [listed] = http.get("/api/v1/auth/key", headers=bearer).json()
            disabled = run_cli(config, "users", "disable", "gone@crash.test")
            assert disabled.returncode == 0, disabled.stderr
            revoked = http.delete(f"/api/v1/auth/key/{listed['id']}", headers=bearer)
            assert revoked.status_code == 204
        slow_wal_cluster.crash_and_start()
    finally:
        server.stop()
    statuses = query_config_db(config, 'SELECT email, status FROM "user" ORDER BY email')
    assert statuses == [("gone@crash.test", "disabled"), ("leaked@crash.test", "active")]
    revoked_at = query_config_db(config, "SELECT revoked_at IS NOT NULL FROM api_key ORDER BY id")
    assert revoked_at == [(True,), (False,)]


def test_a_keys_lowered_limit_survives_a_crash_of_the_server(
    slow_wal_cluster: pg_cluster.TestCluster, tmp_path: Path
) -> None:
    config, server = _box(slow_wal_cluster, tmp_path)
    key = _new_key(config, "capped@crash.test")
    server.start()
    try:
        with httpx.Client(base_url=server.base_url, timeout=30, verify=TLS) as http:
            bearer = {"authorization": f"Bearer {key}"}
            [listed] = http.get("/api/v1/auth/key", headers=bearer).json()
            lowered = http.patch(
                f"/api/v1/auth/key/{listed['id']}", json={"limit_usd": 1}, headers=bearer
            )
            assert lowered.status_code == 200, lowered.text
        slow_wal_cluster.crash_and_start()
    finally:
        server.stop()
    assert query_config_db(config, "SELECT limit_nanos FROM api_key") == [(1_000_000_000,)]


def test_an_accounts_lowered_request_limits_survive_a_crash_of_the_server(
    slow_wal_cluster: pg_cluster.TestCluster, tmp_path: Path
) -> None:
    config, _ = _box(slow_wal_cluster, tmp_path)
    _new_key(config, "busy@crash.test")  # a durable commit: the account is on disk
    limited = run_cli(
        config, "users", "limits", "busy@crash.test", "--rpm", "5", "--concurrent", "2"
    )
    assert limited.returncode == 0, limited.stderr
    slow_wal_cluster.crash_and_start()
    limits = query_config_db(config, 'SELECT rpm, max_concurrent FROM "user"')
    assert limits == [(5, 2)]


def test_a_portal_session_signed_out_stays_out_after_a_crash_of_the_server(
    slow_wal_cluster: pg_cluster.TestCluster, tmp_path: Path
) -> None:
    config, server = _box(slow_wal_cluster, tmp_path)
    assert run_cli(config, "users", "create", "out@crash.test").returncode == 0
    server.start()
    try:
        with httpx.Client(base_url=server.base_url, timeout=30, verify=TLS) as http:
            origin = {"origin": server.base_url}
            asked = http.post(
                "/portal/api/signin/code", json={"email": "out@crash.test"}, headers=origin
            )
            assert asked.status_code == 200, asked.text
            code = console_code(server, "out@crash.test")
            signed = http.post(
                "/portal/api/signin/verify",
                json={"email": "out@crash.test", "code": code},
                headers=origin,
            )
            assert signed.status_code == 200, signed.text
            _new_key(config, "other@crash.test")  # a durable commit: the session is on disk
            csrf = {**origin, "x-csrf-token": signed.json()["csrf_token"]}
            out = http.post("/portal/api/signout", headers=csrf)
            assert out.status_code == 200, out.text
        slow_wal_cluster.crash_and_start()
    finally:
        server.stop()
    assert query_config_db(config, "SELECT count(*) FROM portal_session") == [(0,)]
