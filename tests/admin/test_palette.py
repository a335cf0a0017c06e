"""Keyboard first: F-keys switch screens, and Textual's command palette offers every screen
and the actions of the screen it was opened on."""

from __future__ import annotations

import pytest
from textual.command import CommandPalette
from textual.pilot import Pilot
from textual.widgets import TabbedContent

from admin_tui.app import create_admin_app
from codelace_box.accounts.users import create_user
from codelace_box.catalog.models import set_model
from codelace_box.catalog.providers import add_provider
from tests.admin.pilot import SECRET, AdminEnv, column, notifications, screen_name, until

pytestmark = pytest.mark.timeout(60)


async def run_command(pilot: Pilot[None], words: str) -> None:
    await pilot.press("ctrl+p")
    await until(pilot, lambda: isinstance(pilot.app.screen, CommandPalette), "the palette")
    await pilot.press(*words)
    await pilot.pause(0.3)  # the palette searches in the background
    await pilot.press("enter")


async def test_function_keys_switch_screens(admin_env: AdminEnv) -> None:
    async with create_admin_app(admin_env.config).run_test(size=(80, 24)) as pilot:
        for key, name in [
            ("f2", "UsersScreen"),
            ("f3", "ModelsScreen"),
            ("f4", "ProvidersScreen"),
            ("f5", "ActivityScreen"),
            ("f6", "AuditScreen"),
            ("f1", "DashboardScreen"),
        ]:
            await pilot.press(key)
            await until(pilot, lambda name=name: screen_name(pilot) == name, name)  # type: ignore[misc]


async def test_palette_goes_to_screens_and_runs_screen_actions(admin_env: AdminEnv) -> None:
    create_user("alice@example.com")
    async with create_admin_app(admin_env.config).run_test(size=(80, 24)) as pilot:
        await run_command(pilot, "go to models")
        await until(pilot, lambda: screen_name(pilot) == "ModelsScreen", "the models screen")
        await run_command(pilot, "go to users")
        await until(pilot, lambda: screen_name(pilot) == "UsersScreen", "the users screen")
        await until(pilot, lambda: column(pilot, "#users") == ["alice@example.com"], "alice")
        await run_command(pilot, "new user")
        await until(pilot, lambda: screen_name(pilot) == "FormDialog", "the new user form")
        assert pilot.app.screen.query_one(".dialog-title").content == "New user"  # type: ignore[attr-defined]


async def test_every_screen_action_is_reachable_from_any_screen(admin_env: AdminEnv) -> None:
    """From the dashboard, "add provider" switches to the providers screen and opens its form;
    the palette offers every screen's actions, whichever screen it is opened on."""
    from admin_tui.app import AdminApp

    declared = {title for screen in AdminApp.MODES.values() for title, _, _ in screen.PALETTE}  # type: ignore[union-attr]
    async with create_admin_app(admin_env.config).run_test(size=(80, 24)) as pilot:
        for key in ("f1", "f3", "f5"):
            await pilot.press(key)
            await pilot.pause(0.1)
            offered = {c.title for c in pilot.app.get_system_commands(pilot.app.screen)}
            assert declared <= offered, declared - offered
        await pilot.press("f1")
        await until(pilot, lambda: screen_name(pilot) == "DashboardScreen", "the dashboard")
        await run_command(pilot, "add provider")
        await until(pilot, lambda: screen_name(pilot) == "FormDialog", "the add provider form")
        assert pilot.app.screen.query_one(".dialog-title").content == "Add provider"  # type: ignore[attr-defined]
        await pilot.press("escape")
        await until(pilot, lambda: screen_name(pilot) == "ProvidersScreen", "the providers screen")


@pytest.mark.parametrize(
    ("words", "title"),
    [("edit model", "Edit openai/gpt-5.4"), ("adjust balance", "Adjust balance of ana@x.org")],
)
async def test_a_palette_action_on_the_selected_row_of_a_screen_not_shown_yet(
    admin_env: AdminEnv, words: str, title: str
) -> None:
    """From the dashboard, an action on another screen's highlighted row waits for that
    screen's first rows (it said "No model selected" on a catalog of one)."""
    create_user("ana@x.org")
    add_provider("openai", "openai", SECRET, "sk-palette-0000000000000001")
    set_model("openai/gpt-5.4", "2.5", "10")
    async with create_admin_app(admin_env.config).run_test(notifications=True) as pilot:
        await run_command(pilot, words)
        await until(
            pilot, lambda: screen_name(pilot) == "FormDialog" or notifications(pilot), "an outcome"
        )
        assert notifications(pilot) == []
        assert pilot.app.screen.query_one(".dialog-title").content == title  # type: ignore[attr-defined]


async def test_a_palette_action_of_a_screen_under_a_detail_goes_back_to_it(
    admin_env: AdminEnv,
) -> None:
    """A user's detail is pushed over the users screen: the palette's "New user" (from any
    screen) ran on the detail, which has no such action, and nothing happened at all. It goes
    back to the users screen and opens the form there."""
    create_user("ana@x.org")
    async with create_admin_app(admin_env.config).run_test(notifications=True) as pilot:
        await pilot.press("f2")
        await until(pilot, lambda: column(pilot, "#users") == ["ana@x.org"], "ana")
        await pilot.press("enter")
        await until(pilot, lambda: screen_name(pilot) == "UserDetailScreen", "her detail")
        await pilot.press("f1")
        await until(pilot, lambda: screen_name(pilot) == "DashboardScreen", "the dashboard")
        await run_command(pilot, "new user")
        await until(pilot, lambda: screen_name(pilot) == "FormDialog", "the new user form")
        assert pilot.app.screen.query_one(".dialog-title").content == "New user"  # type: ignore[attr-defined]


async def test_the_activity_palette_works_from_the_spend_report(admin_env: AdminEnv) -> None:
    """The spend report is pushed over Activity: "Switch requests/payments" did nothing."""
    async with create_admin_app(admin_env.config).run_test(notifications=True) as pilot:
        await pilot.press("f5")
        await until(pilot, lambda: screen_name(pilot) == "ActivityScreen", "activity")
        await pilot.press("r")
        await until(pilot, lambda: screen_name(pilot) == "SpendScreen", "the spend report")
        await run_command(pilot, "switch requests/payments")
        await until(pilot, lambda: screen_name(pilot) == "ActivityScreen", "activity again")
        tabs = pilot.app.screen.query_one("#activity-tabs", TabbedContent)
        await until(pilot, lambda: tabs.active == "tab-payments", "the payments tab")
