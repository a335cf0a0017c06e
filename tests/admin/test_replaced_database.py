"""The dashboard and a restore: `restore` refuses while the dashboard has the database open,
and a database file replaced by hand under it is noticed: the dashboard reopens the new file
and never writes into the old, unlinked one."""

from __future__ import annotations

import os
import shutil

import pytest

from admin_tui.app import create_admin_app
from codelace_box.accounts.users import create_user
from codelace_box.billing.credits import adjust_balance
from codelace_box.db.core import close_database
from tests.admin.pilot import (
    AdminEnv,
    column,
    fill,
    notifications,
    open_form,
    screen_name,
    sqlite_file_only,
    until,
)
from tests.support import run_cli, sqlite_rows

pytestmark = [pytest.mark.timeout(60), sqlite_file_only]
SIZE = (100, 30)


async def test_restore_is_refused_while_the_dashboard_is_open(admin_env: AdminEnv) -> None:
    create_user("ana@example.com")
    backup = admin_env.path.parent / "backups" / "b.db"
    assert run_cli(admin_env.path, "backup", str(backup)).returncode == 0
    async with create_admin_app(admin_env.config).run_test(size=SIZE) as pilot:
        await pilot.press("f2")
        await until(pilot, lambda: column(pilot, "#users") == ["ana@example.com"], "ana")
        refused = run_cli(admin_env.path, "restore", str(backup))
        assert refused.returncode == 1 and "`admin`" in refused.stderr, refused.stderr
    done = run_cli(admin_env.path, "restore", str(backup))  # the dashboard has quit
    assert done.returncode == 0, done.stderr


async def test_a_replaced_database_file_is_reopened_and_the_old_one_never_written(
    admin_env: AdminEnv,
) -> None:
    db_path = admin_env.config.database.path
    create_user("ana@example.com")
    adjust_balance("ana@example.com", "5", "opening")
    replacement = f"{db_path}.other"
    close_database()
    shutil.copyfile(db_path, replacement)
    sqlite_rows(replacement, 'UPDATE "user" SET email = ? WHERE email = ?',
                ("bea@example.com", "ana@example.com"))  # fmt: skip
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.press("f2")
        await until(pilot, lambda: column(pilot, "#users") == ["ana@example.com"], "ana")
        moved_away = f"{db_path}.old"
        os.replace(db_path, moved_away)  # by hand, as the old README's restore steps did
        os.replace(replacement, db_path)
        await open_form(pilot, "a", "the adjust form")
        await fill(pilot, "amount", "3")
        await fill(pilot, "reason", "goodwill")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: screen_name(pilot) == "ConfirmDialog", "the question")
        await pilot.press("y")
        await until(
            pilot,
            lambda: (
                any("was replaced" in n for n in notifications(pilot))
                or "was replaced" in str(pilot.app.screen.query("#form-error").first().visual)
            ),
            "the replaced file noticed",
        )
        await pilot.press("escape")
        await until(pilot, lambda: column(pilot, "#users") == ["bea@example.com"], "the new file")
    old = sqlite_rows(moved_away, 'SELECT balance_nanos FROM "user"')
    new = sqlite_rows(db_path, 'SELECT balance_nanos FROM "user"')
    assert old == [(5_000_000_000,)] and new == [(5_000_000_000,)], "nothing written anywhere"
