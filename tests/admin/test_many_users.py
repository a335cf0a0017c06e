"""More accounts than the users table lists at once: the operator is told so and how to reach
the rest, and an account created then is put under the cursor all the same; and more spenders
than the spend report lists at once (every row of a table is drawn on the event loop)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from admin_tui.app import create_admin_app
from codelace_box.accounts.users import find_user
from codelace_box.db.core import utcnow, write_transaction
from codelace_box.db.models import User
from codelace_box.db.timestamps import db_time
from codelace_box.gateway.metering import count_in_totals
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


NOW = datetime(2026, 11, 20, 12, 0, 0)


def seed_spenders() -> None:
    """USERS accounts, account i having spent i + 1 dollars two days before NOW (a whole day of
    the 7-day window: its day totals, as the settlement keeps them)."""
    seed_users()
    when = db_time(NOW - timedelta(days=2))
    ids = [u.id for u in User.select(User.id).order_by(User.id)]
    with write_transaction() as tx:
        for i, user_id in enumerate(ids):
            usage = (10, 5, 0, 0, (i + 1) * 1_000_000_000)
            count_in_totals(tx, (user_id, None, "openai/gpt-5.4"), "ok", usage, when)


async def test_a_spend_report_of_more_groups_than_it_lists_says_so(admin_env: AdminEnv) -> None:
    """20,000 spenders took seconds of the event loop on every refresh (the dashboard froze);
    the report lists the first 1,000 in its order, its total still over every group."""
    seed_spenders()
    app = create_admin_app(admin_env.config, clock=lambda: NOW)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f5", "r")
        await until(pilot, lambda: screen_name(pilot) == "SpendScreen", "the spend report")
        await until(pilot, lambda: len(column(pilot, "#spend")) > 0, "the spenders")
        labels = column(pilot, "#spend")
        assert len(labels) == 1_000
        assert labels[0] == f"user{USERS - 1:04d}@example.com"  # the biggest spender first
        total = sum(range(1, USERS + 1))
        assert f"total ${total:,}.00".replace(",", "") in text_of(pilot, "#spend-title")
        assert "1,000 biggest of 1,050" in text_of(pilot, "#spend-more")
        await pilot.press("s")
        await until(pilot, lambda: column(pilot, "#spend")[0] == "user0000@example.com", "small")
        assert len(column(pilot, "#spend")) == 1_000
        assert "1,000 smallest of 1,050" in text_of(pilot, "#spend-more")
        assert "usage report" in text_of(pilot, "#spend-more")
