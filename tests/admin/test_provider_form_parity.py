"""The provider forms (F4 n and u) set what `providers add/update` set: the billed fields a
provider lets through (`--allow-field`, `--no-allow-field`) and whether it serves the Responses
API itself (`--responses-api`); the screen shows both, so the operator can see why a request
with `plugins` is refused (or not)."""

from __future__ import annotations

import pytest
from textual.widgets import Select

from admin_tui.app import create_admin_app
from codelace_box.audit import list_entries
from codelace_box.catalog import providers as catalog
from tests.admin.pilot import (
    SECRET,
    AdminEnv,
    column,
    fill,
    open_form,
    screen_name,
    text_of,
    until,
)

pytestmark = pytest.mark.timeout(60)
SIZE = (100, 30)


async def test_allowed_fields_and_the_responses_api_are_set_shown_and_cleared(
    admin_env: AdminEnv,
) -> None:
    key = "sk-parity-0000000000002222"
    catalog.add_provider("gw", "openai", SECRET, key, allowed_fields=["route"])
    async with create_admin_app(admin_env.config).run_test(size=SIZE) as pilot:
        await pilot.press("f4")
        await until(pilot, lambda: column(pilot, "#providers") == ["gw"], "the provider")
        await until(pilot, lambda: "allows route" in text_of(pilot, "#keys-title"), "shown")
        await open_form(pilot, "u", "the edit form")
        assert pilot.app.screen.query_one("#field-allowed_fields").value == "route"  # type: ignore[attr-defined]
        await fill(pilot, "allowed_fields", "route, nonsense")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "nonsense" in text_of(pilot, "#form-error"), "the refusal")
        await fill(pilot, "allowed_fields", "plugins, web_search_20250305")
        pilot.app.screen.query_one("#field-responses_api", Select).value = "yes"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: screen_name(pilot) == "ProvidersScreen", "the form to close")
        await until(
            pilot, lambda: "allows plugins, web_search" in text_of(pilot, "#keys-title"), "new"
        )
        assert "Responses API" in text_of(pilot, "#keys-title")
        provider = catalog.get_provider("gw")
        assert (catalog.allowed_fields(provider), provider.responses_api) == (
            ["plugins", "web_search"],
            True,
        )
        await open_form(pilot, "u", "the edit form again")
        await fill(pilot, "allowed_fields", "")
        pilot.app.screen.query_one("#field-responses_api", Select).value = "no"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: screen_name(pilot) == "ProvidersScreen", "the form to close")
        await until(pilot, lambda: "allows" not in text_of(pilot, "#keys-title"), "cleared")
    provider = catalog.get_provider("gw")
    assert (catalog.allowed_fields(provider), provider.responses_api) == ([], False)
    entry = list_entries()[-1]
    assert entry.command == "providers update"
    assert entry.before["allowed_fields"] == ["plugins", "web_search"]  # type: ignore[index]
    assert entry.after["allowed_fields"] == []  # type: ignore[index]


async def test_a_provider_is_added_with_its_allowed_fields(admin_env: AdminEnv) -> None:
    async with create_admin_app(admin_env.config).run_test(size=SIZE) as pilot:
        await pilot.press("f4")
        await until(pilot, lambda: screen_name(pilot) == "ProvidersScreen", "the screen")
        await open_form(pilot, "n", "the add form")
        await fill(pilot, "name", "openrouter")
        await fill(pilot, "base_url", "https://openrouter.ai/api/v1")
        await fill(pilot, "key", "sk-or-parity-000000000000003333")
        await fill(pilot, "allowed_fields", "plugins")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: screen_name(pilot) == "ProvidersScreen", "the form to close")
    assert catalog.allowed_fields(catalog.get_provider("openrouter")) == ["plugins"]
