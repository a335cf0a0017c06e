"""A key is shown once, so on PostgreSQL (whose sessions commit with synchronous_commit = off)
every transaction that mints one commits with synchronous_commit = on: a server crash right after
the answer cannot lose a key its user already saw.

Seen from the server: a cluster of this test's own logs every statement (log_statement = all);
in each session, every INSERT into api_key must come after a `SET LOCAL synchronous_commit = on`
of the same transaction. Every way a key is minted is taken: `keys create`, POST
/api/v1/auth/key, a sign-in (otp/verify) that creates the account and one that does not, and the
portal's key creation.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests import pg_cluster
from tests.accounts.conftest import console_code
from tests.pg_cluster import (
    SHARED_SECRET,
    durable_inserts,
    query_config_db,
    wanted_engine,
)
from tests.support import TLS, ServerProcess, free_port, run_cli, write_config

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(wanted_engine() != "postgres", reason="PostgreSQL's commit setting"),
]


def test_every_way_of_minting_a_key_commits_it_durably(
    logged_cluster: pg_cluster.TestCluster, tmp_path: Path
) -> None:
    port = free_port()
    url = logged_cluster.new_database()
    sections = {
        "server": {"host": "127.0.0.1", "port": port, "secret_key": SHARED_SECRET},
        "database": {"path": str(tmp_path / "data" / "box.db"), "url": url},
    }
    config = write_config(tmp_path / "codelace.toml", sections)
    server = ServerProcess(config, port).start()
    try:
        assert run_cli(config, "users", "create", "cli@keys.test").returncode == 0
        made = run_cli(config, "keys", "create", "cli@keys.test")  # 1: the CLI
        assert made.returncode == 0, made.stderr
        cli_key = made.stdout.strip().splitlines()[0]
        _mint_over_http(server, cli_key)  # 2-5
    finally:
        server.stop()
    assert query_config_db(config, "SELECT COUNT(*) FROM api_key") == [(5,)]
    inserts = durable_inserts(logged_cluster, "api_key")
    assert inserts == [("api_key", True)] * 5, inserts


def _mint_over_http(server: ServerProcess, cli_key: str) -> None:
    """A key by POST /api/v1/auth/key, by two sign-ins (a new account, then the same one) and
    by the portal."""
    with httpx.Client(base_url=server.base_url, timeout=30, verify=TLS) as http:
        made = http.post(
            "/api/v1/auth/key", json={"name": "api"}, headers={"authorization": f"Bearer {cli_key}"}
        )
        assert made.status_code == 200, made.text
        for _ in range(2):  # the first creates the account
            assert http.post("/api/v1/auth/otp/request", json={"email": "otp@keys.test"}).is_success
            code = console_code(server, "otp@keys.test")
            signed_in = http.post(
                "/api/v1/auth/otp/verify", json={"email": "otp@keys.test", "code": code}
            )
            assert signed_in.status_code == 200, signed_in.text
        origin = {"origin": server.base_url}
        asked = http.post(
            "/portal/api/signin/code", json={"email": "web@keys.test"}, headers=origin
        )
        assert asked.status_code == 200, asked.text
        code = console_code(server, "web@keys.test")
        session = http.post(
            "/portal/api/signin/verify", json={"email": "web@keys.test", "code": code},
            headers=origin,
        )  # fmt: skip
        assert session.status_code == 200, session.text
        csrf = {"x-csrf-token": session.json()["csrf_token"], **origin}
        portal_key = http.post("/portal/api/keys", json={"name": "web"}, headers=csrf)
        assert portal_key.status_code == 200, portal_key.text
