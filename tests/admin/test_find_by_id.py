"""The access log of `serve` names an account by its id (`user=3f0c9a52-...`), and `users show`
takes a start of it; the users screen's search found emails only and the account's detail did not
show its id, so an operator following a log line could not tell whose requests they were."""

from __future__ import annotations

import pytest
from textual.widgets import Input

from admin_tui.app import create_admin_app
from codelace_box.accounts.users import create_user
from codelace_box.db.core import utcnow
from codelace_box.db.models import Payment
from tests.admin.pilot import AdminEnv, add_usage, column, screen_name, text_of, until

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


async def test_activity_is_filtered_by_an_accounts_id(admin_env: AdminEnv) -> None:
    """F5's filter took emails, models, statuses and request ids: the `user=` of an access log
    line found nothing."""
    alice = create_user("alice@example.com")
    bob = create_user("bob@example.com")
    now = utcnow()
    add_usage(alice.id, now, request_id="req-alice-1")
    add_usage(bob.id, now, request_id="req-bob-1")
    Payment.create(user=bob.id, amount_nanos=10**10, kind="topup", status="pending")
    Payment.create(user=alice.id, amount_nanos=10**10, kind="topup", status="pending")
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f5")
        await until(pilot, lambda: len(column(pilot, "#requests")) == 2, "both requests")
        pilot.app.screen.query_one("#filter", Input).value = bob.uuid
        await until(pilot, lambda: column(pilot, "#requests", 2) == ["bob@example.com"], "bob's")
        await until(pilot, lambda: column(pilot, "#payments", 1) == ["bob@example.com"], "paid")
