"""`serve` refused by a real PostgreSQL (the tests' throwaway cluster): what no restart mends
(a wrong password, a role or database that does not exist) exits 78 (EX_CONFIG), so systemd's
RestartPreventExitStatus=78 leaves it stopped; what may pass (too many connections, a database
closed to sessions for a while) exits 1 and is started again."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.pgcluster import PgCluster
from tests.foundation.conftest import one_error_line
from tests.support import free_port, run_cli

pytestmark = pytest.mark.timeout(90)
EX_CONFIG = 78


def _serve(tmp_path: Path, url: str) -> tuple[int, str]:
    """Start `serve` on `url`; its exit status and its one error line (no password in it)."""
    env = {"CODELACE_DATABASE_URL": url, "CODELACE_SERVER_SECRET_KEY": "s" * 40}
    result = run_cli(None, "serve", "--port", str(free_port()), env=env, cwd=tmp_path, timeout=30)
    assert "LEAKpw" not in result.stderr + result.stdout
    # (a serve start sweeps the metrics folders of boxes killed elsewhere, saying so at INFO)
    said = "".join(
        line for line in result.stderr.splitlines(keepends=True) if " INFO codelace_box" not in line
    )
    line = one_error_line(said)
    assert "cannot open the database" in line, line
    return result.returncode, line


def _role(cluster: PgCluster, tail: str) -> str:
    return f"exitpg_{os.getpid()}_{tail}"


def _with_password_checked(cluster: PgCluster, role: str) -> None:
    """A role whose password the server checks (the cluster trusts loopback otherwise)."""
    cluster.sql(f"CREATE ROLE \"{role}\" LOGIN PASSWORD 'right-one'")
    hba = cluster.data / "pg_hba.conf"
    hba.write_text(f"host all {role} 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
    cluster.sql("SELECT pg_reload_conf()")


def test_a_wrong_password_a_missing_role_or_database_exit_with_the_config_status(
    tmp_path: Path, pg_cluster: PgCluster
) -> None:
    """Each exited 1, and systemd started the box again every 2 s for ever: a restart cannot
    make a password right or a role or database exist (SQLSTATE 28P01, 28000, 3D000)."""
    role = _role(pg_cluster, "pw")
    _with_password_checked(pg_cluster, role)
    at = f"127.0.0.1:{pg_cluster.port}"
    cases = [
        (f"postgresql://{role}:LEAKpw@{at}/postgres", "password authentication failed"),
        (f"postgresql://{_role(pg_cluster, 'none')}@{at}/postgres", "does not exist"),
        (f"postgresql://postgres@{at}/{_role(pg_cluster, 'nodb')}", "does not exist"),
    ]
    for url, said in cases:
        status, line = _serve(tmp_path, url)
        assert (status, said in line) == (EX_CONFIG, True), line


def test_too_many_connections_or_a_database_closed_for_a_while_exit_1(
    tmp_path: Path, pg_cluster: PgCluster
) -> None:
    """What may pass by itself (SQLSTATE 53300; 55000 while a database refuses sessions) stays
    1: systemd starts it again."""
    role = _role(pg_cluster, "full")
    pg_cluster.sql(f'CREATE ROLE "{role}" LOGIN CONNECTION LIMIT 0')
    closed = pg_cluster.new_database()
    pg_cluster.sql(f'ALTER DATABASE "{closed.rsplit("/", 1)[1]}" ALLOW_CONNECTIONS false')
    at = f"127.0.0.1:{pg_cluster.port}"
    for url, said in [
        (f"postgresql://{role}@{at}/postgres", "too many connections"),
        (closed, "not currently accepting connections"),
    ]:
        status, line = _serve(tmp_path, url)
        assert (status, said in line) == (1, True), line


@pytest.mark.parametrize(
    ("error", "for_good"),
    [("InvalidPassword", True), ("InvalidAuthorizationSpecification", True),
     ("InvalidCatalogName", True), ("TooManyConnections", False), ("CannotConnectNow", False)],
)  # fmt: skip
def test_a_refusal_with_a_sqlstate_is_told_by_it_not_by_its_wording(
    error: str, for_good: bool
) -> None:
    """Where the driver has the SQLSTATE (psycopg has none for a failed connect: the tests
    above go by libpq's line), it decides, through peewee's wrapping, whatever the wording."""
    import peewee
    import psycopg

    from codelace_box.db import postgres

    driver_error = getattr(psycopg.errors, error)('FATAL:  role "x" does not exist')
    wrapped = peewee.OperationalError(driver_error, *driver_error.args)
    assert postgres.login_refused(wrapped, str(driver_error)) is for_good
    assert postgres.login_refused(driver_error, "") is for_good
