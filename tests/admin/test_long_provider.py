"""A provider named at the length its name may have (63 characters): its column in the Models
and Providers tables gave up no width, so at 80 columns it pushed the prices (Models) and a
provider's state and keys (Providers) off the screen."""

from __future__ import annotations

import pytest

from admin_tui.app import create_admin_app
from admin_tui.widgets.live_table import LiveTable
from codelace_box.catalog import models
from codelace_box.catalog import providers as catalog
from tests.admin.pilot import AdminEnv, column, until

pytestmark = pytest.mark.timeout(60)
NARROW = (80, 24)
LONG = "team-shared-" + "x" * 51  # 63 characters, the longest name a provider may have


def off_screen(table: LiveTable) -> list[str]:
    """The labels of the columns that end past the table's right edge."""
    end, past = 0, []
    for column_ in table.ordered_columns:
        end += column_.get_render_width(table)
        if end > table.size.width:
            past.append(str(column_.label))
    return past


async def test_a_long_provider_name_leaves_the_prices_and_states_on_screen(
    admin_env: AdminEnv,
) -> None:
    catalog.add_provider(LONG, "openai", "secret", "sk-long-key-0001", "http://127.0.0.1:9/v1")
    catalog.add_provider("openai", "openai", "secret", "sk-openai-key-01", "http://127.0.0.1:9/v1")
    models.set_model("openai/gpt-5.4", "2.5", "10")
    models.set_model("openai/gpt-5.4-mini", "0.25", "2")
    models.set_model(f"{LONG}/m", "1", "4")
    async with create_admin_app(admin_env.config).run_test(size=NARROW) as pilot:
        await pilot.press("f3")
        await until(pilot, lambda: len(column(pilot, "#models")) == 3, "the models")
        await pilot.pause(0.2)
        table = pilot.app.screen.query_one("#models", LiveTable)
        assert "In $/1M" not in off_screen(table) and "On" not in off_screen(table), [
            c.width for c in table.ordered_columns
        ]  # (the last column, Aliases, may reach past the edge when four texts need room)

        await pilot.press("f4")
        await until(pilot, lambda: len(column(pilot, "#providers")) == 2, "the providers")
        await pilot.pause(0.2)
        table = pilot.app.screen.query_one("#providers", LiveTable)
        assert off_screen(table) == [], [c.width for c in table.ordered_columns]
