"""At 80 columns the bar on top was 87 cells wide: "F6 Audit" fell off the edge, so an operator
on a standard terminal never saw that the audit screen exists. The bar fits the terminal."""

from __future__ import annotations

import pytest

from admin_tui.app import create_admin_app
from tests.admin.pilot import AdminEnv, screen_name, until

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("width", [80, 200])
async def test_every_screen_key_is_on_the_bar(admin_env: AdminEnv, width: int) -> None:
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=(width, 24)) as pilot:
        for key, screen in (("f1", "DashboardScreen"), ("f6", "AuditScreen")):
            await pilot.press(key)
            await until(pilot, lambda: screen_name(pilot) == screen, screen)  # noqa: B023
            await pilot.pause()
            bar = str(pilot.app.screen.query_one("NavBar").render_line(0).text)
            assert "F1 Dashboard" in bar and "F6 Audit" in bar, bar
            assert ("codelace-box" in bar) == (width >= 100), bar
