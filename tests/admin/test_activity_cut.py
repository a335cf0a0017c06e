"""Activity lists the newest 200 requests and payments: when there are more (the dashboard
counting 350 pending payments, a filter on "pending" listing 200 of them), it says so, as the
users table and a user's detail do."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from admin_tui.app import create_admin_app
from codelace_box.accounts.users import create_user
from codelace_box.db.core import write_transaction
from codelace_box.db.models import Payment, UsageRecord
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


def seed_requests(user_id: int, count: int) -> None:
    rows = [
        {"request_id": f"req_{i:024x}", "user": user_id, "model": "openai/gpt-5.4",
         "provider": "openai", "upstream_model": "gpt-5.4", "input_per_1m_nanos": 0,
         "output_per_1m_nanos": 0, "status": "ok",
         "created_at": db_time(NOW - timedelta(minutes=i))}
        for i in range(count)
    ]  # fmt: skip
    with write_transaction():
        UsageRecord.insert_many(rows).execute()


async def test_each_tabs_note_names_its_own_filter_fields(admin_env: AdminEnv) -> None:
    """The payments' note named the requests' filter fields (model, request id: a payment has
    neither) and the requests' note the payments' (kind)."""
    ana = create_user("ana@example.com")
    seed_payments(ana.id, 201)
    seed_requests(ana.id, 201)
    async with create_admin_app(admin_env.config, clock=lambda: NOW).run_test(size=SIZE) as pilot:
        await pilot.press("f5")
        await until(pilot, lambda: screen_name(pilot) == "ActivityScreen", "activity")
        screen = pilot.app.screen
        await until(pilot, lambda: screen.query_one("#requests-more").display, "its note")
        requests = text_of(pilot, "#requests-more")
        await pilot.press("t")
        await until(pilot, lambda: screen.query_one("#payments-more").display, "its note")
        payments = text_of(pilot, "#payments-more")
    assert "model" in requests and "request id" in requests, requests
    assert "kind" not in requests, requests
    assert "kind" in payments and "status" in payments, payments
    assert "model" not in payments and "request id" not in payments, payments
