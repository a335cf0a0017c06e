"""F5 shows a failed request's status as `error:CODE` (error:upstream_error); that text typed
(or pasted) into the filter found nothing, as the filter looked for it in the status and the
error code one at a time, so the operator following what the table showed got an empty list."""

from __future__ import annotations

import pytest
from textual.widgets import Input

from admin_tui.app import create_admin_app
from codelace_box.accounts.users import create_user
from codelace_box.db.core import utcnow
from tests.admin.pilot import AdminEnv, add_usage, column, until

pytestmark = pytest.mark.timeout(60)
SIZE = (100, 30)


async def test_the_status_as_shown_filters_the_requests(admin_env: AdminEnv) -> None:
    alice = create_user("alice@example.com")
    now = utcnow()
    add_usage(alice.id, now, request_id="r-ok")
    add_usage(alice.id, now, request_id="r-up", status="error", error_code="upstream_error")
    add_usage(alice.id, now, request_id="r-to", status="error", error_code="upstream_timeout")
    async with create_admin_app(admin_env.config).run_test(size=SIZE) as pilot:
        await pilot.press("f5")
        await until(pilot, lambda: len(column(pilot, "#requests")) == 3, "the requests")
        shown = "error:upstream_error"
        assert shown in column(pilot, "#requests", 1)
        pilot.app.screen.query_one("#filter", Input).value = shown.upper()
        await until(pilot, lambda: column(pilot, "#requests", 1) == [shown], "the status shown")
        pilot.app.screen.query_one("#filter", Input).value = "error"
        await until(pilot, lambda: len(column(pilot, "#requests")) == 2, "both failures")
