"""A provider key pasted into the Base URL field (a slip of the tab key, or pasted after the
URL) was quoted back whole in the form's refusal, and by `providers add/update --base-url` on
stderr (a terminal's scrollback, a CI log). The refusal quotes it with the key masked."""

from __future__ import annotations

import pytest

from admin_tui.app import create_admin_app
from tests.admin.pilot import AdminEnv, fill, open_form, screen_name, text_of, until

pytestmark = pytest.mark.timeout(60)
KEY = "sk-proj-Q3xv9PastedInTheWrongField0123456789abcd"


async def refusal_of(admin_env: AdminEnv, fields: dict[str, str], said: str) -> str:
    """The add-provider form's refusal (the error line that contains `said`) of `fields`."""
    async with create_admin_app(admin_env.config).run_test(size=(100, 30)) as pilot:
        await pilot.press("f4")
        await until(pilot, lambda: screen_name(pilot) == "ProvidersScreen", "the screen")
        await open_form(pilot, "n", "the add form")
        for name, value in fields.items():
            await fill(pilot, name, value)
        await pilot.press("ctrl+s")
        await until(pilot, lambda: said in text_of(pilot, "#form-error"), "the refusal")
        return text_of(pilot, "#form-error")  # (a field itself shows what was typed in it)


@pytest.mark.parametrize("typed", [KEY, f"https://api.openai.com/v1 {KEY}"])
async def test_a_key_typed_as_the_base_url_is_not_shown_back(
    admin_env: AdminEnv, typed: str
) -> None:
    fields = {"name": "openai", "base_url": typed, "key": KEY}
    shown = await refusal_of(admin_env, fields, "base URL")
    for piece in (KEY, KEY[:16], KEY[-12:]):
        assert piece not in shown, shown
    assert "sk-…abcd" in shown, shown


async def test_a_key_pasted_as_the_provider_name_is_not_shown_back(admin_env: AdminEnv) -> None:
    """The add form opens with the cursor in Name: a key pasted at once lands there."""
    shown = await refusal_of(admin_env, {"name": KEY, "key": KEY}, "provider name")
    for piece in (KEY, KEY[:16], KEY[-12:]):
        assert piece not in shown, shown


async def test_a_key_pasted_as_an_allowed_field_is_not_shown_back(admin_env: AdminEnv) -> None:
    """Allowed billed fields is the field after the key: a key pasted a tab too far (or once
    more after it) was quoted whole in 'cannot allow ...'."""
    fields = {"name": "openai", "key": KEY, "allowed_fields": f"plugins, {KEY}"}
    shown = await refusal_of(admin_env, fields, "cannot allow")
    for piece in (KEY, KEY[:16], KEY[-12:]):
        assert piece not in shown, shown
    assert "sk-…abcd" in shown, shown
