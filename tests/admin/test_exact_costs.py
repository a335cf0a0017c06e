"""A request's cost in the live tables (dashboard, activity, a user's usage) was rounded to six
places: a cheap model's request of $0.0000004 read "$0", free, while the API's cost_usd, the
request's detail and the ledger have it to the nano-dollar."""

from __future__ import annotations

import pytest

from admin_tui.app import create_admin_app
from codelace_box.accounts.users import create_user
from codelace_box.db.core import utcnow
from tests.admin.pilot import AdminEnv, add_usage, column, rendered, until
from tests.admin.test_dashboard import figures_line

pytestmark = pytest.mark.timeout(60)


async def test_a_tiny_cost_is_not_shown_as_zero(admin_env: AdminEnv) -> None:
    alice = create_user("alice@example.com")
    add_usage(alice.id, utcnow(), request_id="req-tiny", tokens=(40, 0), cost_nanos=400)
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=(120, 34)) as pilot:
        await until(pilot, lambda: column(pilot, "#recent", 4) == ["$0.0000004"], "dashboard")
        await pilot.press("f5")
        await until(pilot, lambda: column(pilot, "#requests", 5) == ["$0.0000004"], "activity")


async def test_the_dashboards_spend_is_not_rounded_to_cents(admin_env: AdminEnv) -> None:
    """A box serving a cheap model spent $0.004 in the last hour: the dashboard's Spend read
    "$0.00" (cents, half-even), as if nothing was spent, while the spend report (r in F5), a
    user's detail and `usage report` give $0.004."""
    alice = create_user("alice@example.com")
    for n in range(4):
        add_usage(alice.id, utcnow(), request_id=f"req-{n}", tokens=(10_000, 0), cost_nanos=10**6)
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=(120, 34)) as pilot:
        await until(pilot, lambda: len(column(pilot, "#recent")) == 4, "the requests")
        await until(
            pilot,
            lambda: figures_line(rendered(pilot, "#figures"), "Spend")[1:3] == ["$0.004"] * 2,
            "the spend of the hour and the day",
        )
