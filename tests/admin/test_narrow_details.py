"""What a key may call and what a provider allows, shown whole: the keys table of a user's
detail had no allowed models at all, the summary's id line wrapped at 80 columns (the label on
one line, the id on the next), and a provider's long list of allowed billed fields was cut at
the edge of the keys' title line."""

from __future__ import annotations

from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widget import Widget

from admin_tui.app import create_admin_app
from codelace_box.accounts.keys import create_key
from codelace_box.accounts.users import create_user
from codelace_box.catalog import models
from codelace_box.catalog import providers as catalog
from codelace_box.providers.billed_fields import BILLED_FIELDS
from tests.admin.pilot import AdminEnv, column, screen_name, until

pytestmark = pytest.mark.timeout(60)
NARROW = (80, 24)


def shown_lines(pilot: Pilot[Any], selector: str) -> list[str]:
    """The lines a widget shows on screen now, as plain text (cut where the screen ends)."""
    widget = pilot.app.screen.query_one(selector, Widget)
    visible = max(0, pilot.app.screen.size.width - widget.content_region.x)
    return [widget.render_line(y).text[:visible].strip() for y in range(widget.size.height)]


def column_named(pilot: Pilot[Any], selector: str, label: str) -> list[str]:
    table = pilot.app.screen.query_one(selector)
    labels = [str(c.label) for c in table.ordered_columns]  # type: ignore[attr-defined]
    assert label in labels, labels
    return column(pilot, selector, labels.index(label))


async def open_detail(pilot: Pilot[Any], email: str) -> None:
    await pilot.press("f2")
    await until(pilot, lambda: column(pilot, "#users") == [email], email)
    await pilot.press("enter")
    await until(pilot, lambda: screen_name(pilot) == "UserDetailScreen", "the detail")


async def test_the_keys_table_shows_what_each_key_may_call(admin_env: AdminEnv) -> None:
    catalog.add_provider("acme", "openai", "secret", "sk-acme-key-0001", "http://127.0.0.1:9/v1")
    models.set_model("acme/m1", "2", "8")
    models.set_model("acme/m2", "2", "8")
    alice = create_user("alice@example.com")
    create_key(alice.id, "any")
    create_key(alice.id, "scoped", {"allowed_models": ["acme/m1", "acme/m2"]})
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=(120, 30)) as pilot:
        await open_detail(pilot, "alice@example.com")
        await until(pilot, lambda: len(column(pilot, "#keys")) == 2, "both keys")
        by_name = dict(zip(column_named(pilot, "#keys", "Name"),
                           column_named(pilot, "#keys", "Models"), strict=True))  # fmt: skip
        assert by_name == {"any": "all", "scoped": "acme/m1, acme/m2"}


async def test_the_summarys_id_line_fits_80_columns(admin_env: AdminEnv) -> None:
    alice = create_user("alice@example.com")
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=NARROW) as pilot:
        await open_detail(pilot, "alice@example.com")
        await until(pilot, lambda: any(alice.uuid in line for line in shown_lines(
            pilot, "#summary")), "the id shown")  # fmt: skip
        lines = shown_lines(pilot, "#summary")
        assert any(line.endswith(f"id {alice.uuid}") for line in lines), lines
        assert not any(line.endswith(" id") or line.endswith("·") for line in lines), lines


async def test_a_providers_long_list_of_allowed_fields_is_shown_whole(
    admin_env: AdminEnv,
) -> None:
    fields = sorted(BILLED_FIELDS)
    catalog.add_provider("acme", "openai", "secret", "sk-acme-key-0001",
                         "http://127.0.0.1:9/v1", allowed_fields=fields)  # fmt: skip
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=NARROW) as pilot:
        await pilot.press("f4")
        await until(pilot, lambda: column(pilot, "#providers") == ["acme"], "the provider")
        await until(pilot, lambda: "acme" in " ".join(shown_lines(pilot, "#keys-title")), "it")
        shown = " ".join(" ".join(shown_lines(pilot, "#keys-title")).split())
        missing = [name for name in fields if name not in shown.replace(",", " ").split()]
        assert missing == [], shown
