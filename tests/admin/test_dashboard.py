"""Dashboard and activity screens: the figures for known data at a frozen moment, and live
updates as the gateway writes requests and payments."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest

from admin_tui.app import create_admin_app
from codelace_box.accounts.users import create_user
from codelace_box.db.core import utcnow
from codelace_box.db.models import Payment
from tests.admin.pilot import AdminEnv, add_usage, column, rendered, screen_name, text_of, until

pytestmark = pytest.mark.timeout(60)
SIZE = (100, 30)
NOW = datetime(2026, 3, 1, 12, 30, 15)


def figures_line(text: str, label: str) -> list[str]:
    """The cells of one row of the figures table."""
    line = next(row for row in text.splitlines() if row.strip().startswith(label))
    return re.split(r"\s{2,}", line.strip())


async def test_figures_for_the_last_hour_and_day(admin_env: AdminEnv) -> None:
    alice = create_user("alice@example.com").id
    bob = create_user("bob@example.com").id
    add_usage(alice, NOW - timedelta(minutes=2), request_id="r1", cost_nanos=1_250_000_000)
    add_usage(
        bob,
        NOW - timedelta(minutes=30),
        request_id="r2",
        status="error",
        cost_nanos=0,
        error_code="upstream_error",
    )
    add_usage(bob, NOW - timedelta(hours=20), request_id="r3", cost_nanos=3_000_000_000)
    add_usage(bob, NOW - timedelta(days=3), request_id="r4", cost_nanos=9_000_000_000)
    Payment.create(
        user=alice,
        amount_nanos=20 * 10**9,
        kind="topup",
        status="completed",
        created_at=NOW - timedelta(minutes=10),
        completed_at=NOW - timedelta(minutes=9),
    )
    Payment.create(
        user=bob,
        amount_nanos=50 * 10**9,
        kind="topup",
        status="pending",
        created_at=NOW - timedelta(minutes=1),
    )
    app = create_admin_app(admin_env.config, clock=lambda: NOW)
    async with app.run_test(size=SIZE) as pilot:
        await until(
            pilot,
            lambda: column(pilot, "#recent", 2)[:1] == ["alice@example.com"],
            "the newest requests",
        )
        text = rendered(pilot, "#figures")
        assert figures_line(text, "Requests") == ["Requests", "2", "3", "Users", "2 (0 disabled)"]
        assert figures_line(text, "Tokens") == [
            "Tokens",
            "3,000",
            "4,500",
            "Revenue, all time",
            "$20.00",
        ]
        assert figures_line(text, "Spend") == ["Spend", "$1.25", "$4.25", "Pending payments", "1"]
        assert figures_line(text, "Errors") == ["Errors", "1", "1", "Failing provider keys", "0"]
        assert figures_line(text, "Active users") == ["Active users", "2", "2"]
        assert figures_line(text, "Revenue") == ["Revenue", "$20.00", "$20.00"]
        assert text_of(pilot, "#rpm-caption") == (
            "Requests per minute, last 60 min: now 0 · peak 1 · total 2"
        )
        assert column(pilot, "#recent", 1) == ["ok", "error", "ok", "ok"]


async def test_dashboard_and_activity_update_live(admin_env: AdminEnv) -> None:
    alice = create_user("alice@example.com").id
    bob = create_user("bob@example.com").id
    async with create_admin_app(admin_env.config).run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "total 0" in text_of(pilot, "#rpm-caption"), "the chart")
        add_usage(alice, utcnow(), request_id="live-1")
        await until(
            pilot,
            lambda: column(pilot, "#recent", 2) == ["alice@example.com"],
            "the new request on the dashboard",
            timeout=15,
        )
        # "now" is the current minute's count: 0 again if the minute turned meanwhile
        assert "peak 1 · total 1" in text_of(pilot, "#rpm-caption")

        await pilot.press("f5")
        await until(pilot, lambda: screen_name(pilot) == "ActivityScreen", "the activity screen")
        await until(pilot, lambda: len(column(pilot, "#requests")) == 1, "the request")
        add_usage(
            bob,
            utcnow(),
            request_id="live-2",
            model="anthropic/claude-opus-4.6",
            status="error",
            error_code="upstream_timeout",
        )
        Payment.create(user=bob, amount_nanos=10**10, kind="topup", status="pending")
        await until(
            pilot,
            lambda: column(pilot, "#requests", 2) == ["bob@example.com", "alice@example.com"],
            "newest first",
            timeout=15,
        )
        assert column(pilot, "#requests", 1) == ["error:upstream_timeout", "ok"]
        assert column(pilot, "#payments", 1) == ["bob@example.com"]

        await pilot.press("slash", *"claude")
        await until(
            pilot,
            lambda: column(pilot, "#requests", 3) == ["anthropic/claude-opus-4.6"],
            "the filter",
        )
        assert column(pilot, "#payments") == []  # no payment mentions claude
        await pilot.press("enter", "t")
        assert pilot.app.screen.query_one("#activity-tabs").active == "tab-payments"  # type: ignore[attr-defined]
        pilot.app.screen.query_one("#filter").value = "pending"  # type: ignore[attr-defined]
        await until(pilot, lambda: column(pilot, "#payments", 4) == ["pending"], "payments filter")
