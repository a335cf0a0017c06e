"""The access log of `serve` names an account by its id (`user=3f0c9a52-...`), and `users show`
takes a start of it; the users screen's search found emails only and the account's detail did not
show its id, so an operator following a log line could not tell whose requests they were."""

from __future__ import annotations

import pytest

from admin_tui.app import create_admin_app
from codelace_box.accounts.users import create_user
from tests.admin.pilot import AdminEnv, column, screen_name, text_of, until

pytestmark = pytest.mark.timeout(60)
SIZE = (100, 30)


async def test_an_account_is_found_by_the_start_of_its_id(admin_env: AdminEnv) -> None:
    create_user("alice@example.com")
    bob = create_user("bob@example.com")
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f2")
        await until(pilot, lambda: len(column(pilot, "#users")) == 2, "both accounts")
        await pilot.press("slash", *bob.uuid[:8].upper())
        await until(pilot, lambda: column(pilot, "#users") == ["bob@example.com"], "the search")
        await pilot.press("enter", "enter")  # from the search box to the table, then open it
        await until(pilot, lambda: screen_name(pilot) == "UserDetailScreen", "the detail")
        await until(pilot, lambda: bob.uuid in text_of(pilot, "#summary"), "the id shown")
