"""The model form (F3, n / e) sets what `models set` sets: the context window
(`--context-tokens`, what a media part of unknown size reserves) is shown, set, changed and
cleared there, and `none` unsets a token setting as on the command line."""

from __future__ import annotations

import pytest

from admin_tui.app import create_admin_app
from codelace_box.catalog.models import CachePrices, get_model, set_model
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


async def test_a_tenfold_change_of_a_cache_price_is_asked_about(admin_env: AdminEnv) -> None:
    """Cache reads are most of an agent's tokens: "25" typed for "0.25" bills them a hundred
    times over, and the form asked only about the input and output prices."""
    add_provider("anth", "anthropic", SECRET, "sk-ant-admin-test-000000002")
    set_model("anth/claude", "3", "15", cache_prices=CachePrices("0.3", "3.75"))
    async with create_admin_app(admin_env.config).run_test(size=SIZE) as pilot:
        await pilot.press("f3")
        await until(pilot, lambda: column(pilot, "#models") == ["anth/claude"], "the model")
        await open_form(pilot, "e", "the edit form")
        await fill(pilot, "cache_read_per_1m", "30")
        await fill(pilot, "cache_write_1h_per_1m", "60")  # unset: the write price, 3.75
        await pilot.press("ctrl+s")
        await until(pilot, lambda: screen_name(pilot) == "ConfirmDialog", "the question")
        asked = text_of(pilot, "#confirm-message")
        assert "cache read price: 0.3 -> 30" in asked, asked
        assert "1h cache write price: 3.75 -> 60" in asked, asked
        await pilot.press("n")
        await until(pilot, lambda: screen_name(pilot) == "FormDialog", "back in the form")
    assert get_model("anth/claude").cache_read_per_1m_nanos == 300_000_000


async def test_the_cache_prices_a_model_bills_at_are_shown(admin_env: AdminEnv) -> None:
    """models list prints them; the screen showed them only inside the edit form."""
    add_provider("anth", "anthropic", SECRET, "sk-ant-admin-test-000000002")
    set_model("anth/claude", "3", "15", cache_prices=CachePrices("0.3", "3.75", "6"))
    set_model("anth/plain", "1", "5")
    async with create_admin_app(admin_env.config).run_test(size=SIZE) as pilot:
        await pilot.press("f3")
        await until(pilot, lambda: len(column(pilot, "#models")) == 2, "the models")
        line = lambda: text_of(pilot, "#model-detail").replace("\n", " ")  # noqa: E731
        await until(pilot, lambda: "cache read $0.3, write $3.75, 1h write $6" in line(), "set")
        await pilot.press("down")
        await until(pilot, lambda: "cache read $1, write $1, 1h write $1" in line(), "unset")
