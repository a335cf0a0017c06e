"""A request's cost in the live tables (dashboard, activity, a user's usage) was rounded to six
places: a cheap model's request of $0.0000004 read "$0", free, while the API's cost_usd, the
request's detail and the ledger have it to the nano-dollar."""

from __future__ import annotations

import pytest

from admin_tui.app import create_admin_app
from codelace_box.accounts.users import create_user
from codelace_box.db.core import utcnow
from tests.admin.pilot import AdminEnv, add_usage, column, until

pytestmark = pytest.mark.timeout(60)


async def test_a_tiny_cost_is_not_shown_as_zero(admin_env: AdminEnv) -> None:
    alice = create_user("alice@example.com")
    add_usage(alice.id, utcnow(), request_id="req-tiny", tokens=(40, 0), cost_nanos=400)
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=(120, 34)) as pilot:
        await until(pilot, lambda: column(pilot, "#recent", 4) == ["$0.0000004"], "dashboard")
        await pilot.press("f5")
        await until(pilot, lambda: column(pilot, "#requests", 5) == ["$0.0000004"], "activity")
