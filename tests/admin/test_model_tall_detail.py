"""F3 Models at 80x24 with a model many aliases route to (every dated name a client sends by
default, to one catalog model): the line under the table that shows the highlighted model in
full took every line, and the catalog itself was squeezed off the screen. The line keeps to
part of the screen and scrolls (Tab into it, then the arrows or End)."""

from __future__ import annotations

from typing import Any

import pytest
from textual.pilot import Pilot

from admin_tui.app import create_admin_app
from codelace_box.catalog.aliases import set_alias
from codelace_box.catalog.models import set_model
from codelace_box.catalog.providers import add_provider
from tests.admin.pilot import AdminEnv, column, until

pytestmark = pytest.mark.timeout(60)
NARROW = (80, 24)
ALIASES = [f"claude-sonnet-4-5-2025{i:04d}" for i in range(30)]


def on_screen(pilot: Pilot[Any]) -> str:
    """What the terminal shows now (the screenshot's text, its blanks as blanks)."""
    return pilot.app.export_screenshot().replace("&#160;", " ")


async def test_a_model_with_many_aliases_leaves_the_catalog_on_screen(admin_env: AdminEnv) -> None:
    add_provider("anthropic", "anthropic", "secret", "sk-ant-key-0001", "http://127.0.0.1:9/v1")
    for n in range(5):
        set_model(f"anthropic/claude-model-{n}", "3", "15")
    for alias in ALIASES:
        set_alias(alias, "anthropic/claude-model-0")
    async with create_admin_app(admin_env.config).run_test(size=NARROW) as pilot:
        await pilot.press("f3")
        await until(pilot, lambda: len(column(pilot, "#models")) == 5, "the models")
        await until(pilot, lambda: ALIASES[0] in on_screen(pilot), "the model in full")
        table = pilot.app.screen.query_one("#models")
        assert table.content_region.height >= 6, table.content_region  # header and 5 rows

        assert ALIASES[-1] not in on_screen(pilot)  # the end of the line: further down
        await pilot.press("tab", "end")
        await until(pilot, lambda: ALIASES[-1] in on_screen(pilot), "its end")


async def test_another_model_with_many_aliases_is_shown_from_its_first_line(
    admin_env: AdminEnv,
) -> None:
    """The line scrolled to the end of one model's aliases, the next model highlighted was shown
    at the same depth: a run of aliases, its id and prices above the edge."""
    add_provider("anthropic", "anthropic", "secret", "sk-ant-key-0001", "http://127.0.0.1:9/v1")
    for n in range(2):
        set_model(f"anthropic/claude-model-{n}", "3", "15")
        for alias in ALIASES:
            set_alias(f"{alias}-{n}", f"anthropic/claude-model-{n}")
    async with create_admin_app(admin_env.config).run_test(size=NARROW) as pilot:
        await pilot.press("f3")
        await until(pilot, lambda: len(column(pilot, "#models")) == 2, "the models")
        await until(pilot, lambda: "per 1M tokens" in on_screen(pilot), "model 0 in full")
        await pilot.press("tab", "end")
        await until(pilot, lambda: "per 1M tokens" not in on_screen(pilot), "its end")

        await pilot.press("shift+tab", "down")  # back to the table, the next model
        await until(pilot, lambda: "per 1M tokens" in on_screen(pilot), "its first line")
