"""Actions on what changed under the dashboard: a model removed by another process while its
edit form is open, and the database file gone while an action reads before its dialog. Each
ends in a clear message, writes nothing, and leaves the dashboard running."""

from __future__ import annotations

import os

import pytest

from admin_tui.app import create_admin_app
from codelace_box.accounts.users import create_user
from tests.admin.pilot import AdminEnv, column, notifications, screen_name, until

pytestmark = pytest.mark.timeout(60)
SIZE = (100, 30)


async def test_an_action_failing_before_its_dialog_is_a_toast_not_the_end_of_the_app(
    admin_env: AdminEnv,
) -> None:
    """`r` (request limits) reads the defaults before its form opens: with the database file
    moved away that read fails, and a failing worker would take the whole app down."""
    create_user("ana@example.com")
    db_path = admin_env.config.database.path
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.press("f2")
        await until(pilot, lambda: column(pilot, "#users") == ["ana@example.com"], "ana")
        os.replace(db_path, f"{db_path}.away")
        try:
            await pilot.press("r")
            await until(
                pilot, lambda: any("is gone" in n for n in notifications(pilot)), "the toast"
            )
        finally:
            os.replace(f"{db_path}.away", db_path)
        assert app.is_running and screen_name(pilot) == "UsersScreen"
        await pilot.press("r")  # the file is back: the same action works
        await until(pilot, lambda: screen_name(pilot) == "FormDialog", "the limits form")
