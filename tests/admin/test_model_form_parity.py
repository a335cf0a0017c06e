"""The model form (F3, n / e) sets what `models set` sets: the context window
(`--context-tokens`, what a media part of unknown size reserves) is shown, set, changed and
cleared there, and `none` unsets a token setting as on the command line."""

from __future__ import annotations

import pytest

from admin_tui.app import create_admin_app
from codelace_box.catalog.models import get_model, set_model
from codelace_box.catalog.providers import add_provider
from tests.admin.pilot import SECRET, AdminEnv, column, fill, open_form, screen_name, text_of, until

pytestmark = pytest.mark.timeout(60)
SIZE = (100, 30)


async def test_the_context_window_is_set_shown_and_cleared_in_the_form(
    admin_env: AdminEnv,
) -> None:
    add_provider("openai", "openai", SECRET, "sk-admin-test-0000000000001", "http://127.0.0.1:9/v1")
    set_model("openai/gpt-5.4", "2.5", "10", max_output_tokens=16000, context_tokens=400_000)
    async with create_admin_app(admin_env.config).run_test(size=SIZE) as pilot:
        await pilot.press("f3")
        await until(pilot, lambda: column(pilot, "#models") == ["openai/gpt-5.4"], "the model")
        await until(pilot, lambda: "context 400,000" in text_of(pilot, "#model-detail"), "shown")
        await open_form(pilot, "e", "the edit form")
        assert pilot.app.screen.query_one("#field-context_tokens").value == "400000"  # type: ignore[attr-defined]
        await fill(pilot, "context_tokens", "1,000,000")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: screen_name(pilot) == "ModelsScreen", "the form to close")
        await until(pilot, lambda: get_model("openai/gpt-5.4").context_tokens == 1_000_000, "set")
        await open_form(pilot, "e", "the edit form again")
        await fill(pilot, "context_tokens", "none")
        await fill(pilot, "max_output_tokens", "none")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: screen_name(pilot) == "ModelsScreen", "the form to close")
    model = get_model("openai/gpt-5.4")
    assert (model.context_tokens, model.max_output_tokens) == (None, None)
