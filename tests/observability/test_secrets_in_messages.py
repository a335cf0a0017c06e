"""Secrets the operator configured never reach a message: what a failing command prints on
stderr, what `version --verbose` shows, what serve logs."""

from __future__ import annotations

from pathlib import Path

from tests.support import run_cli, write_config

SECRET = "a-shared-secret-for-every-box-000000000000"


def test_a_password_in_the_database_urls_query_is_not_printed(tmp_path: Path) -> None:
    """libpq takes any connection parameter in the URL's query string, the password too
    (`postgresql://box@db/codelace?password=...`): a database that cannot be opened printed the
    whole URL, password and all, in every command's error (and serve's log)."""
    for url in (
        "postgresql://box@127.0.0.1:1/codelace?password=hunter2-query",
        "postgresql://box@127.0.0.1:1/codelace?sslmode=disable&sslpassword=hunter2-ssl",
        "postgresql://box@127.0.0.1:1/codelace?PassWord=hunter2-case&application_name=x",
    ):
        config = write_config(
            tmp_path / "c.toml", {"database": {"url": url}, "server": {"secret_key": SECRET}}
        )
        for args in (("doctor",), ("users", "list"), ("version", "--verbose")):
            done = run_cli(config, *args)
            shown = done.stdout + done.stderr
            assert "cannot open the database" in shown, shown
            assert "hunter2" not in shown, (args, shown)
            assert "127.0.0.1:1/codelace" in shown, shown  # the rest is still shown
