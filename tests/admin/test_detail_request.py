"""A user's detail lists the account's requests (its Usage tab): Enter on one opens it in full,
as Enter on a request of Activity or the dashboard does (it did nothing there)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from textual.widgets import TabbedContent

from admin_tui.app import create_admin_app
from codelace_box.accounts.users import create_user
from tests.admin.pilot import AdminEnv, add_usage, column, screen_name, text_of, until

pytestmark = pytest.mark.timeout(60)
NOW = datetime(2026, 11, 20, 12, 0, 0)
SIZE = (100, 30)


async def test_enter_on_a_request_of_a_users_detail_opens_it(admin_env: AdminEnv) -> None:
    ana = create_user("ana@example.com")
    add_usage(ana.id, NOW - timedelta(minutes=2), request_id="req_" + "1" * 24)
    add_usage(ana.id, NOW - timedelta(minutes=1), request_id="req_" + "2" * 24,
              model="openai/gpt-5.4-mini")  # fmt: skip
    async with create_admin_app(admin_env.config, clock=lambda: NOW).run_test(size=SIZE) as pilot:
        await pilot.press("f2")
        await until(pilot, lambda: column(pilot, "#users") == ["ana@example.com"], "ana")
        await pilot.press("enter")
        await until(pilot, lambda: screen_name(pilot) == "UserDetailScreen", "the detail")
        await until(pilot, lambda: len(column(pilot, "#usage")) == 2, "her requests")
        pilot.app.screen.query_one("#tabs", TabbedContent).active = "tab-usage"
        pilot.app.screen.query_one("#usage").focus()
        await pilot.pause()
        await pilot.press("enter")  # the newest: gpt-5.4-mini
        await until(pilot, lambda: screen_name(pilot) == "RequestDetailScreen", "the request")
        await until(pilot, lambda: "2222" in text_of(pilot, "#request-detail"), "its detail")
        assert "openai/gpt-5.4-mini" in text_of(pilot, "#request-detail")
        await pilot.press("escape")
        await until(pilot, lambda: screen_name(pilot) == "UserDetailScreen", "back to ana")


async def test_u_on_a_request_of_a_users_detail_goes_back_to_that_detail(
    admin_env: AdminEnv,
) -> None:
    """`u` on a request opened from its user's detail opened a second copy of that detail over
    the first (and again at each round, a stack of copies Escape had to walk back through)."""
    ana = create_user("ana@example.com")
    add_usage(ana.id, NOW - timedelta(minutes=1), request_id="req_" + "3" * 24)
    async with create_admin_app(admin_env.config, clock=lambda: NOW).run_test(size=SIZE) as pilot:
        await pilot.press("f2")
        await until(pilot, lambda: column(pilot, "#users") == ["ana@example.com"], "ana")
        await pilot.press("enter")
        await until(pilot, lambda: screen_name(pilot) == "UserDetailScreen", "the detail")
        detail, depth = pilot.app.screen, len(pilot.app.screen_stack)
        await until(pilot, lambda: len(column(pilot, "#usage")) == 1, "her request")
        for _ in range(2):
            pilot.app.screen.query_one("#tabs", TabbedContent).active = "tab-usage"
            pilot.app.screen.query_one("#usage").focus()
            await pilot.pause()
            await pilot.press("enter")
            await until(pilot, lambda: screen_name(pilot) == "RequestDetailScreen", "the request")
            await until(pilot, lambda: "3333" in text_of(pilot, "#request-detail"), "its detail")
            await pilot.press("u")
            await until(pilot, lambda: screen_name(pilot) == "UserDetailScreen", "ana again")
            assert pilot.app.screen is detail
            assert len(pilot.app.screen_stack) == depth
        await pilot.press("escape")
        await until(pilot, lambda: screen_name(pilot) == "UsersScreen", "the users table")
