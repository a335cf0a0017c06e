"""Activity lists the newest 200 requests and payments: when there are more (the dashboard
counting 350 pending payments, a filter on "pending" listing 200 of them), it says so, as the
users table and a user's detail do."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from admin_tui.app import create_admin_app
from codelace_box.accounts.users import create_user
from codelace_box.db.core import write_transaction
from codelace_box.db.models import Payment
from codelace_box.db.timestamps import db_time
from tests.admin.pilot import AdminEnv, add_usage, column, screen_name, text_of, until

pytestmark = pytest.mark.timeout(60)
NOW = datetime(2026, 11, 20, 12, 0, 0)
SIZE = (100, 30)


def seed_payments(user_id: int, count: int) -> None:
    rows = [
        {"user": user_id, "amount_nanos": 10**10, "kind": "topup", "status": "pending",
         "created_at": db_time(NOW - timedelta(minutes=i))}
        for i in range(count)
    ]  # fmt: skip
    with write_transaction():
        Payment.insert_many(rows).execute()


async def test_activity_says_when_it_lists_only_the_newest(admin_env: AdminEnv) -> None:
    ana = create_user("ana@example.com")
    seed_payments(ana.id, 201)
    for n in range(3):
        add_usage(ana.id, NOW - timedelta(minutes=n + 1), request_id=f"req_{n:024x}")
    async with create_admin_app(admin_env.config, clock=lambda: NOW).run_test(size=SIZE) as pilot:
        await pilot.press("f5")
        await until(pilot, lambda: screen_name(pilot) == "ActivityScreen", "activity")
        await until(pilot, lambda: len(column(pilot, "#payments")) == 200, "200 payments")
        await until(pilot, lambda: len(column(pilot, "#requests")) == 3, "the requests")
        screen = pilot.app.screen
        assert not screen.query_one("#requests-more").display  # all 3 requests are listed
        await pilot.press("t")
        await until(pilot, lambda: screen.query_one("#payments-more").display, "the note")
        note = text_of(pilot, "#payments-more")
        assert "newest 200 payments" in note, note
        assert "/" in note  # how to reach the others

        await pilot.press("slash", *"ana")  # a filter that still matches more than 200
        await pilot.pause(0.6)
        assert screen.query_one("#payments-more").display
        await pilot.press("ctrl+a", "ctrl+k", *"nobody")
        await until(pilot, lambda: column(pilot, "#payments") == [], "no payment")
        assert not screen.query_one("#payments-more").display
