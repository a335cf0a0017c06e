"""The dashboard on PostgreSQL: the SQLite file that database.path still names (a leftover of
the move with `db copy`, or one a command run without the URL made) is no database of its, so
that file appearing, changing or going away never switches the dashboard to it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from admin_tui.app import create_admin_app
from codelace_box.accounts.users import create_user, get_user
from tests.admin.pilot import AdminEnv, column, fill, notifications, open_form, screen_name, until
from tests.pg_cluster import wanted_engine

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
