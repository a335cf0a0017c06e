"""A provider key pasted into the Base URL field (a slip of the tab key, or pasted after the
URL) was quoted back whole in the form's refusal, and by `providers add/update --base-url` on
stderr (a terminal's scrollback, a CI log). The refusal quotes it with the key masked."""

from __future__ import annotations

import pytest

from admin_tui.app import create_admin_app
from tests.admin.pilot import AdminEnv, fill, open_form, screen_name, text_of, until

pytestmark = pytest.mark.timeout(60)
KEY = "sk-proj-Q3xv9PastedInTheWrongField0123456789abcd"


@pytest.mark.parametrize("typed", [KEY, f"https://api.openai.com/v1 {KEY}"])
async def test_a_key_typed_as_the_base_url_is_not_shown_back(
    admin_env: AdminEnv, typed: str
) -> None:
    async with create_admin_app(admin_env.config).run_test(size=(100, 30)) as pilot:
        await pilot.press("f4")
        await until(pilot, lambda: screen_name(pilot) == "ProvidersScreen", "the screen")
        await open_form(pilot, "n", "the add form")
        await fill(pilot, "name", "openai")
        await fill(pilot, "base_url", typed)
        await fill(pilot, "key", KEY)
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "base URL" in text_of(pilot, "#form-error"), "the refusal")
        shown = text_of(pilot, "#form-error")  # (the field itself shows what was typed in it)
    for piece in (KEY, KEY[:16], KEY[-12:]):
        assert piece not in shown, shown
    assert "sk-…abcd" in shown, shown


async def test_a_key_pasted_as_the_provider_name_is_not_shown_back(admin_env: AdminEnv) -> None:
    """The add form opens with the cursor in Name: a key pasted at once lands there."""
    async with create_admin_app(admin_env.config).run_test(size=(100, 30)) as pilot:
        await pilot.press("f4")
        await until(pilot, lambda: screen_name(pilot) == "ProvidersScreen", "the screen")
        await open_form(pilot, "n", "the add form")
        await fill(pilot, "name", KEY)
        await fill(pilot, "key", KEY)
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "provider name" in text_of(pilot, "#form-error"), "refusal")
        shown = text_of(pilot, "#form-error")
    for piece in (KEY, KEY[:16], KEY[-12:]):
        assert piece not in shown, shown


async def test_a_key_pasted_as_an_allowed_field_is_not_shown_back(admin_env: AdminEnv) -> None:
    """Allowed billed fields is the field after the key: a key pasted a tab too far (or once
    more after it) was quoted whole in 'cannot allow ...'."""
    async with create_admin_app(admin_env.config).run_test(size=(100, 30)) as pilot:
        await pilot.press("f4")
        await until(pilot, lambda: screen_name(pilot) == "ProvidersScreen", "the screen")
        await open_form(pilot, "n", "the add form")
        await fill(pilot, "name", "openai")
        await fill(pilot, "key", KEY)
        await fill(pilot, "allowed_fields", f"plugins, {KEY}")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "cannot allow" in text_of(pilot, "#form-error"), "refusal")
        shown = text_of(pilot, "#form-error")
    for piece in (KEY, KEY[:16], KEY[-12:]):
        assert piece not in shown, shown
    assert "sk-…abcd" in shown, shown
