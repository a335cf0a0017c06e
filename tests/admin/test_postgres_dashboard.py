"""The dashboard on PostgreSQL: the SQLite file that database.path still names (a leftover of
the move with `db copy`, or one a command run without the URL made) is no database of its, so
that file appearing, changing or going away never switches the dashboard to it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from admin_tui.app import create_admin_app
from codelace_box.accounts.users import create_user, get_user
from tests.admin.pilot import (
    AdminEnv,
    column,
    fill,
    make_env,
    notifications,
    open_form,
    screen_name,
    until,
)
from tests.pg_cluster import shared_cluster, wanted_engine

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(wanted_engine() != "postgres", reason="a dashboard on PostgreSQL"),
]
SIZE = (100, 30)


async def test_a_sqlite_file_at_database_path_never_replaces_postgresql(
    admin_env: AdminEnv,
) -> None:
    """The dashboard watched database.path for a restore even on PostgreSQL: a SQLite file
    made there meanwhile was taken for a replaced database, and the dashboard reopened it,
    so everything after (credits, revocations) went to that file and never to the database
    every box serves from."""
    assert admin_env.config.database.is_postgres
    create_user("ana@example.com")
    path = Path(admin_env.config.database.path)
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.press("f2")
        await until(pilot, lambda: column(pilot, "#users") == ["ana@example.com"], "ana")
        path.parent.mkdir(parents=True, exist_ok=True)
        sqlite3.connect(path).close()  # a command run without the URL: an empty SQLite file
        await open_form(pilot, "a", "the adjust form")
        await fill(pilot, "amount", "3")
        await fill(pilot, "reason", "goodwill")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: screen_name(pilot) == "ConfirmDialog", "the question")
        await pilot.press("y")
        await until(pilot, lambda: screen_name(pilot) == "UsersScreen", "the form to close")
        assert not any("replaced" in n for n in notifications(pilot)), notifications(pilot)
        pilot.app.screen.reload()  # type: ignore[attr-defined]
        await pilot.pause(0.5)
        assert column(pilot, "#users") == ["ana@example.com"]
    assert get_user("ana@example.com").balance_nanos == 3_000_000_000


async def test_postgresql_going_away_is_said_in_words_and_read_again(tmp_path: Path) -> None:
    """PostgreSQL restarted or unreachable under the dashboard: its screens said "unexpected
    OperationalError: ..." (a bug's words). They say the database is unavailable, where (host
    and port, never the password) and that the dashboard tries again; the next read reopens
    the session."""
    import psycopg

    plain = shared_cluster().new_database()  # trust auth: the password is only to be hidden
    url = plain.replace("postgresql://postgres@", "postgresql://postgres:pw-n0t-sh0wn@")
    env = make_env(tmp_path, database={"url": url})
    create_user("bo@example.com")
    app = create_admin_app(env.config)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.press("f2")
        await until(pilot, lambda: column(pilot, "#users") == ["bo@example.com"], "bo")
        with psycopg.connect(url, autocommit=True) as admin:  # every other session cut
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        pilot.app.screen.reload()  # type: ignore[attr-defined]
        await until(pilot, lambda: notifications(pilot), "the failed read's notice")
        said = " ".join(notifications(pilot))
        port = url.rsplit(":", 1)[1].split("/")[0]
        assert "the database is unavailable" in said and f"127.0.0.1:{port}" in said, said
        assert "try again" in said and "unexpected" not in said, said
        assert "pw-n0t-sh0wn" not in said, said
        pilot.app.screen.reload()  # type: ignore[attr-defined]
        await pilot.pause(0.5)
        assert column(pilot, "#users") == ["bo@example.com"]
