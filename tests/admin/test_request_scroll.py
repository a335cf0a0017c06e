"""A request's detail taller than the terminal (an upstream's error is kept up to 500
characters: seven lines at 80 columns) scrolls from the keyboard: its last lines, the prices
and the cost, were below the screen's edge with nothing that took a key to reach them."""

from __future__ import annotations

from typing import Any

import pytest
from textual.pilot import Pilot

from admin_tui.app import create_admin_app
from codelace_box.accounts.users import create_user
from codelace_box.crypto import mask_tokens
from codelace_box.db.core import utcnow, write_transaction
from codelace_box.db.observability import set_upstream_error
from tests.admin.pilot import AdminEnv, add_usage, column, screen_name, until

pytestmark = pytest.mark.timeout(60)
SHORT = (80, 18)


def on_screen(pilot: Pilot[Any]) -> str:
    """What the terminal shows now (the screenshot's text, its blanks as blanks)."""
    return pilot.app.export_screenshot().replace("&#160;", " ")


async def test_a_tall_request_detail_scrolls_to_its_cost(admin_env: AdminEnv) -> None:
    alice = create_user("alice@example.com")
    add_usage(alice.id, utcnow(), request_id="req-1", status="error", error_code="upstream_error")
    said = mask_tokens("The upstream refused the request: " + "because " * 100)  # as kept
    with write_transaction() as tx:
        set_upstream_error(tx, "req-1", said)
    async with create_admin_app(admin_env.config).run_test(size=SHORT) as pilot:
        await pilot.press("f5")
        await until(pilot, lambda: column(pilot, "#requests") != [], "the request")
        await pilot.press("enter")
        await until(pilot, lambda: screen_name(pilot) == "RequestDetailScreen", "its detail")
        await until(pilot, lambda: "req-1" in on_screen(pilot), "its lines")
        assert "held" not in on_screen(pilot)  # the cost line is below the edge
        await pilot.press("end")
        await until(pilot, lambda: "held" in on_screen(pilot), "the cost line")
