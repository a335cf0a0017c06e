"""A PostgreSQL role that may connect but not create tables (PostgreSQL 15 and later give the
`public` schema's CREATE to the database's owner only, whatever `GRANT ALL ON DATABASE` says):
`migrate` and `serve` say which privilege is missing and how to grant it, in one line."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg

from bench.pgcluster import PgCluster
from tests.support import free_port, run_cli, write_config

SECRET = "a-shared-secret-for-every-box-000000000000"


def _database_of_another_owner(cluster: PgCluster) -> str:
    """A new database owned by `postgres`, and a role with every database privilege on it
    (but not the owner): its URL as that role."""
    role, name = f"limited_{os.getpid()}", f"granted_{os.getpid()}"
    with psycopg.connect(cluster.url(), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        admin.execute(f'CREATE ROLE "{role}" LOGIN')
        admin.execute(f'CREATE DATABASE "{name}"')
        admin.execute(f'GRANT ALL ON DATABASE "{name}" TO "{role}"')
    return f"postgresql://{role}@127.0.0.1:{cluster.port}/{name}"


def test_a_role_that_may_not_create_tables_is_told_what_to_grant(
    tmp_path: Path, pg_cluster: PgCluster
) -> None:
    url = _database_of_another_owner(pg_cluster)
    config = write_config(
        tmp_path / "c.toml", {"database": {"url": url}, "server": {"secret_key": SECRET}}
    )
    for args in (("migrate",), ("users", "list"), ("serve", "--port", str(free_port()))):
        done = run_cli(config, *args)
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        [line] = done.stderr.strip().splitlines()
        assert "unexpected" not in line, line
        assert "permission denied for schema public" in line, line
        assert "GRANT CREATE ON SCHEMA public TO" in line and "OWNER TO" in line, line
