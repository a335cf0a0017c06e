"""A key pressed twice before its form is up (a double tap, a key's auto-repeat, or keystrokes
an SSH link delivers together) opened the form twice: after the operator saved and confirmed
the first adjustment, a second "Adjust balance" form came up with the balance as it was before
(its note read before the first was saved), inviting the same credit again. One press of an
action whose job still runs is all it takes; a different action still starts."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from textual import events
from textual.command import CommandPalette
from textual.pilot import Pilot
from textual.widgets import Select

from admin_tui.app import create_admin_app
from codelace_box.accounts.users import create_user, find_user
from codelace_box.billing.ledger import entries_for
from codelace_box.db.core import utcnow
from tests.admin.pilot import AdminEnv, add_usage, column, fill, screen_name, until

pytestmark = pytest.mark.timeout(60)
SIZE = (100, 30)


def stack(pilot: Pilot[Any]) -> list[str]:
    return [type(screen).__name__ for screen in pilot.app.screen_stack]


def keys_at_once(pilot: Pilot[Any], *keys: str) -> None:
    """Key events delivered back to back, as the terminal hands over keys read together (a
    named key such as `pagedown` types no character)."""
    for key in keys:
        pilot.app.post_message(events.Key(key, key if len(key) == 1 else None))


async def test_a_double_press_opens_one_adjust_form(admin_env: AdminEnv) -> None:
    alice = create_user("alice@example.com")
    async with create_admin_app(admin_env.config).run_test(size=SIZE) as pilot:
        await pilot.press("f2")
        await until(pilot, lambda: column(pilot, "#users") == ["alice@example.com"], "alice")
        keys_at_once(pilot, "a", "a")
        await until(pilot, lambda: screen_name(pilot) == "FormDialog", "the adjust form")
        await pilot.pause(0.3)
        assert stack(pilot) == ["UsersScreen", "FormDialog"]

        await fill(pilot, "amount", "5")
        await fill(pilot, "reason", "goodwill")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: screen_name(pilot) == "ConfirmDialog", "the confirmation")
        await pilot.press("y")
        await until(pilot, lambda: stack(pilot) == ["UsersScreen"], "back at the table")
        await until(pilot, lambda: column(pilot, "#users", 1) == ["$5.00"], "the new balance")

        keys_at_once(pilot, "x", "a")  # two different actions: both start
        await until(pilot, lambda: len(stack(pilot)) == 3, "both dialogs")
        await until(pilot, lambda: pilot.app.screen.query("#field-amount"), "the form mounted")
        await pilot.press("escape")  # the form; then the question under it
        await until(pilot, lambda: screen_name(pilot) == "ConfirmDialog", "the question")
        await pilot.press("n")
        await until(pilot, lambda: stack(pilot) == ["UsersScreen"], "back at the table")
    assert [e.amount_nanos for e in entries_for(alice.id)] == [5_000_000_000]


async def test_a_double_enter_opens_one_detail(admin_env: AdminEnv) -> None:
    """Enter (or u on a request) read twice together pushed the same detail twice: the
    operator's Escape showed the same account or request again, as if it did nothing."""
    alice = create_user("alice@example.com")
    add_usage(alice.id, utcnow(), request_id="req-1")
    async with create_admin_app(admin_env.config).run_test(size=SIZE) as pilot:
        await pilot.press("f2")
        await until(pilot, lambda: column(pilot, "#users") == ["alice@example.com"], "alice")
        keys_at_once(pilot, "enter", "enter")
        await until(pilot, lambda: screen_name(pilot) == "UserDetailScreen", "her detail")
        await pilot.pause(0.3)
        assert stack(pilot) == ["UsersScreen", "UserDetailScreen"]

        await pilot.press("f5")
        await until(pilot, lambda: column(pilot, "#requests") != [], "the request")
        keys_at_once(pilot, "enter", "enter")
        await until(pilot, lambda: screen_name(pilot) == "RequestDetailScreen", "its detail")
        await until(pilot, lambda: pilot.app.screen.detail is not None, "the request read")
        keys_at_once(pilot, "u", "u")
        await until(pilot, lambda: screen_name(pilot) == "UserDetailScreen", "its user")
        await pilot.pause(0.3)
        assert stack(pilot) == ["ActivityScreen", "RequestDetailScreen", "UserDetailScreen"]


async def test_page_keys_read_with_ctrl_p_leave_the_dashboard_up(admin_env: AdminEnv) -> None:
    """Ctrl+P and PgDn (or PgUp) read together, before the palette's list was laid out, ended
    the whole dashboard with a KeyError from Textual's page move (a form open under it too)."""
    async with create_admin_app(admin_env.config).run_test(size=SIZE) as pilot:
        for page in ("pagedown", "pageup"):
            keys_at_once(pilot, "ctrl+p", page)
            await until(pilot, lambda: isinstance(pilot.app.screen, CommandPalette), "palette")
            await pilot.pause(0.3)
            assert pilot.app.is_running, f"the dashboard ended on ctrl+p, {page}"
            await pilot.press("pagedown", "pageup")  # laid out now: the keys page the list
            await pilot.press("escape")
            await until(pilot, lambda: stack(pilot) == ["DashboardScreen"], "the palette closed")


async def test_escape_then_ctrl_p_and_typing_leave_the_dashboard_up(admin_env: AdminEnv) -> None:
    """Escape, Ctrl+P and a letter read together: the Escape reached the palette just opened
    (Textual hands it on late) and closed it while the letter's search was starting, whose
    worker then failed on the palette's removed list (NoMatches) and ended the dashboard."""
    async with create_admin_app(admin_env.config).run_test(size=SIZE) as pilot:
        await pilot.pause(0.3)
        keys_at_once(pilot, "escape", "ctrl+p", "p")
        await pilot.pause(1.0)
        assert pilot.app.is_running and pilot.app._exception is None
        await pilot.press("ctrl+p", *"users")  # the palette still opens and searches
        await until(pilot, lambda: isinstance(pilot.app.screen, CommandPalette), "palette")
        await pilot.press("escape")
        await until(pilot, lambda: stack(pilot) == ["DashboardScreen"], "the palette closed")


async def test_escape_right_after_a_dialog_opens_leaves_the_dashboard_up(
    admin_env: AdminEnv,
) -> None:
    """A form's (or a question's) key and Escape read together: the Escape closed the dialog
    before its mount ran, and its mount's focus of the first field or button (gone with the
    dialog) ended the dashboard."""
    create_user("alice@example.com")
    async with create_admin_app(admin_env.config).run_test(size=SIZE) as pilot:
        await pilot.press("f2")
        await until(pilot, lambda: column(pilot, "#users") == ["alice@example.com"], "alice")
        for key in ("n", "x"):  # the new user form; the question before disabling her
            for ticks in range(1, 5):  # the dialog pushed, its mount not yet run: 1-2 ticks
                pilot.app.post_message(events.Key(key, key))
                for _ in range(ticks):
                    await asyncio.sleep(0)
                pilot.app.post_message(events.Key("escape", None))
                await pilot.pause(0.3)
                assert pilot.app.is_running and pilot.app._exception is None, (key, ticks)
                if len(stack(pilot)) > 1:  # the Escape came before the dialog: close it now
                    await pilot.press("escape")
                await until(pilot, lambda: stack(pilot) == ["UsersScreen"], "the dialog closed")
    assert find_user("alice@example.com").status == "active"


async def test_page_keys_read_with_the_key_opening_a_choice_leave_the_dashboard_up(
    admin_env: AdminEnv,
) -> None:
    """Enter (or Space, Down) on a form's choice and PgDn or PgUp read together: the page key
    reached the choice's list before its first layout and Textual's page move raised KeyError
    there, ending the whole dashboard with the form's typing."""
    async with create_admin_app(admin_env.config).run_test(size=SIZE) as pilot:
        await pilot.press("f4")
        await pilot.pause(0.3)
        await pilot.press("n")
        await until(pilot, lambda: screen_name(pilot) == "FormDialog", "the provider form")
        await pilot.press("tab")
        assert isinstance(pilot.app.focused, Select)  # the provider's kind
        for page, ticks in [
            (page, ticks) for page in ("pagedown", "pageup") for ticks in (1, 2, 3)
        ]:
            pilot.app.post_message(events.Key("enter", None))
            for _ in range(ticks):  # the list shown, not yet laid out: 1-2 ticks
                await asyncio.sleep(0)
            pilot.app.post_message(events.Key(page, None))
            await pilot.pause(0.3)
            assert pilot.app.is_running and pilot.app._exception is None, (page, ticks)
            await pilot.press("escape")  # the list closed; the form stays
            await until(pilot, lambda: isinstance(pilot.app.focused, Select), "the choice")
        assert screen_name(pilot) == "FormDialog"
