"""More accounts than the users table lists at once: the operator is told so and how to reach
the rest, and an account created then is put under the cursor all the same."""

from __future__ import annotations

import pytest

from admin_tui.app import create_admin_app
from codelace_box.accounts.users import find_user
from codelace_box.db.core import utcnow, write_transaction
from codelace_box.db.models import User
from tests.admin.pilot import AdminEnv, column, fill, open_form, screen_name, text_of, until

pytestmark = pytest.mark.timeout(90)
SIZE = (80, 24)
USERS = 1_050  # the feature lists the first 1,000


def seed_users() -> None:
    now = utcnow()
    with write_transaction():
        User.insert_many(
            [{"email": f"user{i:04d}@example.com", "created_at": now} for i in range(USERS)]
        ).execute()


async def test_a_table_cut_at_the_list_limit_says_so(admin_env: AdminEnv) -> None:
    seed_users()
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f2")
        await until(pilot, lambda: len(column(pilot, "#users")) == 1_000, "the first 1,000")
        await until(pilot, lambda: "1,050" in text_of(pilot, "#users-more"), "the notice")
        assert "first 1,000 of 1,050" in text_of(pilot, "#users-more")
        assert "search" in text_of(pilot, "#users-more")

        await pilot.press("slash", *"user")
        await until(pilot, lambda: "matching" in text_of(pilot, "#users-more"), "the notice")
        assert "first 1,000 matching accounts" in text_of(pilot, "#users-more")
        await pilot.press(*"104")
        await until(pilot, lambda: len(column(pilot, "#users")) == 10, "the search")
        assert not app.screen.query_one("#users-more").display


async def test_a_user_created_beyond_the_limit_is_shown_and_selected(admin_env: AdminEnv) -> None:
    seed_users()
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f2")
        await until(pilot, lambda: len(column(pilot, "#users")) == 1_000, "the first 1,000")
        await open_form(pilot, "n", "the new user form")
        await fill(pilot, "email", "zoe@example.com")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: screen_name(pilot) == "UsersScreen", "the form to close")
        await until(pilot, lambda: "zoe@example.com" in column(pilot, "#users"), "zoe")
        screen = app.screen
        assert screen.selected_user().email == "zoe@example.com"  # type: ignore[attr-defined]
    assert find_user("zoe@example.com") is not None
