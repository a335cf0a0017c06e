"""A search of 50,000 characters or more (a paste gone wrong) in the Users search or the
Activity filter showed "unexpected OperationalError" (SQLite refuses a LIKE pattern that long):
a search field takes at most SEARCH_MAX characters (a longer paste keeps its start), and what
it takes is searched."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from textual import events
from textual.pilot import Pilot
from textual.widgets import Input

from admin_tui.app import create_admin_app
from admin_tui.widgets.search_box import SEARCH_MAX
from codelace_box.accounts.users import create_user
from tests.admin.pilot import AdminEnv, add_usage, column, notifications, screen_name, until

pytestmark = pytest.mark.timeout(60)
SIZE = (100, 30)
PASTED = "alice" + "x" * 60_000


async def paste_into(pilot: Pilot[Any], selector: str, text: str) -> Input:
    """Paste `text` into a search box (as a terminal delivers a paste) and let it search."""
    box = pilot.app.screen.query_one(selector, Input)
    box.focus()
    await pilot.pause()
    box.post_message(events.Paste(text))
    await pilot.pause(0.8)  # past the search delay, and the search itself
    return box


@pytest.mark.parametrize(("key", "screen", "selector"), [
    ("f2", "UsersScreen", "#search"), ("f5", "ActivityScreen", "#filter"),
])  # fmt: skip
async def test_a_huge_paste_into_a_search_is_no_error(
    admin_env: AdminEnv, key: str, screen: str, selector: str
) -> None:
    alice = create_user("alice@example.com")
    add_usage(alice.id, datetime.now(UTC).replace(tzinfo=None), request_id="req_long_search")
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.press(key)
        await until(pilot, lambda: screen_name(pilot) == screen, "the screen")
        box = await paste_into(pilot, selector, PASTED)
        await pilot.pause(0.5)
        assert notifications(pilot) == []
        assert len(box.value) <= SEARCH_MAX


async def test_a_search_of_the_longest_email_still_finds_it(admin_env: AdminEnv) -> None:
    """The cap leaves room for any address an account can have."""
    email = "a" * 64 + "@" + ".".join(["b" * 58] * 3) + ".example.com"
    create_user(email)
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.press("f2")
        await until(pilot, lambda: screen_name(pilot) == "UsersScreen", "the screen")
        await paste_into(pilot, "#search", email)
        await until(pilot, lambda: len(column(pilot, "#users")) == 1, "the account")
        assert notifications(pilot) == []
