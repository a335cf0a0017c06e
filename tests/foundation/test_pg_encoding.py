"""A PostgreSQL database not created as UTF8: SQL_ASCII, what initdb makes under the C locale
(and its template1 then gives every new database). The box speaks UTF-8 to it."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg

from tests.support import run_cli, write_config

SECRET = "a-shared-secret-for-every-box-000000000000"
NAME = "cl\u00e9 \U0001f511"  # a key name beyond ASCII: an accent and an emoji


def _sql_ascii_database(pg_url: str) -> str:
    base, _, name = pg_url.rpartition("/")
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(
            f"CREATE DATABASE \"{name}_ascii\" ENCODING 'SQL_ASCII' LC_COLLATE 'C' "
            "LC_CTYPE 'C' TEMPLATE template0"
        )
    return f"{base}/{name}_ascii"


def test_a_sql_ascii_database_keeps_its_schema_and_text_beyond_ascii(
    tmp_path: Path, pg_url: str
) -> None:
    """psycopg reads such a database's text as bytes: after the first command had made the
    schema, the next found none (schema version 0) and failed making it again ('relation
    "user" already exists'), and text beyond ASCII was refused ('unexpected
    UnicodeEncodeError')."""
    url = _sql_ascii_database(pg_url)
    sections = {"database": {"url": url}, "server": {"secret_key": SECRET}}
    config = write_config(tmp_path / "pg.toml", sections)
    for args in (
        ("users", "create", "ascii@example.com"),
        ("keys", "create", "ascii@example.com", "--name", NAME),
        ("doctor",),
    ):
        done = run_cli(config, *args)
        assert done.returncode == 0, (args, done.stderr)
    listed = run_cli(config, "keys", "list", "ascii@example.com", "--json")
    assert [key["name"] for key in json.loads(listed.stdout)] == [NAME]
