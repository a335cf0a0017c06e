"""Moments in the dashboard's history columns carry their year when it is not the current UTC
year (on a box older than a year, last December's rows read as this December's), and keep the
short month-day form in the current year."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from textual.pilot import Pilot

from admin_tui.app import create_admin_app
from admin_tui.screens.formatting import clock_moment
from codelace_box.accounts.keys import create_key
from codelace_box.accounts.users import create_user
from codelace_box.billing.credits import adjust_balance
from codelace_box.catalog.providers import add_provider
from codelace_box.db.models import ApiKey, LedgerEntry, Payment, ProviderKey, User
from tests.admin.pilot import SECRET, AdminEnv, add_usage, column, screen_name, text_of, until
from tests.admin.test_limits import open_detail

pytestmark = pytest.mark.timeout(60)
SIZE = (120, 34)
THEN = datetime(2025, 12, 7, 9, 15, 0)  # a moment of last year, for a clock in 2026
LONG, SHORT = "2025-12-07 09:15", "12-07 09:15"


def seed_history_at(when: datetime) -> None:
    """One account with a used key, a credit (ledger and payment), a request, a failing
    provider key: every history moment at `when`."""
    alice = create_user("alice@example.com")
    create_key(alice.id, "laptop")
    adjust_balance("alice@example.com", "5", "welcome credit")
    add_usage(alice.id, when, request_id="req-old")
    add_provider("openai", "openai", SECRET, "sk-proj-failing-key-00001111")
    ProviderKey.update(failing=True, failure_reason="HTTP 401", last_failed_at=when).execute()
    ApiKey.update(last_used_at=when).execute()
    User.update(last_seen_at=when).execute()
    LedgerEntry.update(created_at=when).execute()
    Payment.update(created_at=when, completed_at=when).execute()


async def history_moments(pilot: Pilot[None]) -> dict[str, list[str]]:
    """Every history column that shows the seeded moment, by where it is shown."""
    await open_detail(pilot, "alice@example.com")
    await until(pilot, lambda: len(column(pilot, "#usage")) == 1, "the request")
    shown = {
        "key last used": column(pilot, "#keys", 6),
        "ledger": column(pilot, "#ledger"),
        "usage": column(pilot, "#usage"),
        "payments": column(pilot, "#payments"),
    }
    await pilot.press("escape")
    await until(pilot, lambda: screen_name(pilot) == "UsersScreen", "the users")
    shown["users last seen"] = column(pilot, "#users", 3)
    await pilot.press("f5")
    await until(pilot, lambda: len(column(pilot, "#payments")) == 1, "activity")
    shown["activity requests"] = column(pilot, "#requests")
    shown["activity payments"] = column(pilot, "#payments")
    await pilot.press("f4")
    await until(pilot, lambda: len(column(pilot, "#keys")) == 1, "the provider key")
    shown["key failed at"] = column(pilot, "#keys", 4)
    await until(pilot, lambda: "since" in text_of(pilot, "#key-check"), "the key's state")
    shown["key state"] = [text_of(pilot, "#key-check").split(" since ")[1].split(" UTC")[0]]
    return shown


@pytest.mark.parametrize(
    ("clock", "expected"),
    [(datetime(2026, 3, 1, 12, 0), LONG), (datetime(2025, 12, 31, 23, 0), SHORT)],
    ids=["last-year", "this-year"],
)
async def test_history_moments_carry_their_year_unless_this_years(
    admin_env: AdminEnv, clock: datetime, expected: str
) -> None:
    seed_history_at(THEN)
    app = create_admin_app(admin_env.config, clock=lambda: clock)
    async with app.run_test(size=SIZE) as pilot:
        shown = await history_moments(pilot)
    assert {where: cells for where, cells in shown.items() if cells != [expected]} == {}


def test_today_in_a_live_table_is_the_time_alone() -> None:
    """Activity and the dashboard keep the time alone for today's rows."""
    assert clock_moment(THEN, THEN.date()) == "09:15:00"
    assert clock_moment(THEN, (THEN + timedelta(days=1)).date()) == SHORT
    assert clock_moment(THEN, (THEN + timedelta(days=30)).date()) == LONG
    assert clock_moment(None, THEN.date()) == "—"
