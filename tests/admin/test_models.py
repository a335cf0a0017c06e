"""Models screen: add, edit, enable/disable, alias and unalias through the UI; bad input is
refused in the form with the feature's message and writes nothing."""

from __future__ import annotations

import pytest
from textual.pilot import Pilot
from textual.widgets import Select

from admin_tui.app import create_admin_app
from codelace_box.catalog.aliases import list_aliases, set_alias
from codelace_box.catalog.models import get_model, set_model
from codelace_box.catalog.providers import add_provider
from codelace_box.db.models import CatalogModel
from tests.admin.pilot import (
    SECRET,
    AdminEnv,
    column,
    fill,
    notifications,
    open_form,
    rows,
    screen_name,
    text_of,
    until,
)

pytestmark = pytest.mark.timeout(60)
SIZE = (100, 30)


def seed_catalog() -> None:
    add_provider("openai", "openai", SECRET, "sk-admin-test-0000000000001", "http://127.0.0.1:9/v1")
    add_provider("anth", "anthropic", SECRET, "sk-ant-admin-test-000000002")
    set_model("openai/gpt-5.4", "2.5", "10", max_output_tokens=16000)


async def open_models(pilot: Pilot[None]) -> None:
    await pilot.press("f3")
    await until(pilot, lambda: screen_name(pilot) == "ModelsScreen", "the models screen")
    await until(pilot, lambda: column(pilot, "#models") != [], "the catalog")


async def test_add_a_model_with_its_prices(admin_env: AdminEnv) -> None:
    seed_catalog()
    async with create_admin_app(admin_env.config).run_test(size=SIZE) as pilot:
        await open_models(pilot)
        await open_form(pilot, "n", "the add form")
        await fill(pilot, "model_id", "anthropic/claude-opus-4.6")
        await fill(pilot, "input_per_1m", "15")
        await fill(pilot, "output_per_1m", "75.000000001")
        await fill(pilot, "provider", "anth")
        await fill(pilot, "upstream_model", "claude-opus-4-6")
        await fill(pilot, "max_output_tokens", "32,000")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: screen_name(pilot) == "ModelsScreen", "the form to close")
        await until(pilot, lambda: len(column(pilot, "#models")) == 2, "the new row")
        assert rows(pilot, "#models")[0] == [
            "anthropic/claude-opus-4.6",
            "anth",
            "claude-opus-4-6",
            "15",
            "75.000000001",
            "32000",
            "yes",
            "",
        ]
    model = get_model("anthropic/claude-opus-4.6")
    assert (model.provider.name, model.upstream_model) == ("anth", "claude-opus-4-6")
    assert (model.input_per_1m_nanos, model.output_per_1m_nanos) == (15 * 10**9, 75 * 10**9 + 1)
    assert model.max_output_tokens == 32000 and model.enabled


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("input_per_1m", "cheap", "input price must be a USD amount such as 20 or 12.5"),
        ("output_per_1m", "-1", "output price must not be negative"),
        ("output_per_1m", "0.0000000001", "output price is more precise than a nano-dollar"),
        ("max_output_tokens", "lots", "max output tokens must be a whole number"),
        ("model_id", "no-slash", "model id must look like provider/model"),
        ("provider", "nobody", "no provider named nobody"),
    ],
)
async def test_bad_input_shows_the_error_and_writes_nothing(
    admin_env: AdminEnv, field: str, value: str, message: str
) -> None:
    seed_catalog()
    good = {
        "model_id": "openai/gpt-5.4-mini",
        "input_per_1m": "0.25",
        "output_per_1m": "2",
        "provider": "",
        "upstream_model": "",
        "max_output_tokens": "",
    }
    async with create_admin_app(admin_env.config).run_test(size=SIZE) as pilot:
        await open_models(pilot)
        await open_form(pilot, "n", "the add form")
        for name, text in (good | {field: value}).items():
            await fill(pilot, name, text)
        await pilot.press("ctrl+s")
        await until(pilot, lambda: message in text_of(pilot, "#form-error"), message)
        assert screen_name(pilot) == "FormDialog"
    assert [m.id for m in CatalogModel.select()] == ["openai/gpt-5.4"]


async def test_a_duplicate_model_id_is_refused(admin_env: AdminEnv) -> None:
    seed_catalog()
    async with create_admin_app(admin_env.config).run_test(size=SIZE) as pilot:
        await open_models(pilot)
        await open_form(pilot, "n", "the add form")
        await fill(pilot, "model_id", "openai/gpt-5.4")
        await fill(pilot, "input_per_1m", "0.01")
        await fill(pilot, "output_per_1m", "0.02")
        await pilot.press("ctrl+s")
        expected = "model openai/gpt-5.4 is already in the catalog: edit it instead"
        await until(pilot, lambda: text_of(pilot, "#form-error") == expected, "the refusal")
        await pilot.press("escape")
        await until(pilot, lambda: screen_name(pilot) == "ModelsScreen", "the form to close")
    model = get_model("openai/gpt-5.4")
    assert (model.input_per_1m_nanos, model.output_per_1m_nanos) == (2_500_000_000, 10 * 10**9)


async def test_edit_prices_and_upstream_then_disable_and_enable(admin_env: AdminEnv) -> None:
    seed_catalog()
    async with create_admin_app(admin_env.config).run_test(size=SIZE) as pilot:
        await open_models(pilot)
        await open_form(pilot, "e", "the edit form")
        form = pilot.app.screen
        assert form.values() == {  # type: ignore[attr-defined]
            "model_id": "openai/gpt-5.4",
            "input_per_1m": "2.5",
            "output_per_1m": "10",
            "provider": "openai",
            "upstream_model": "gpt-5.4",
            "max_output_tokens": "16000",
            "context_tokens": "",
            "cache_read_per_1m": "",
            "cache_write_per_1m": "",
            "cache_write_1h_per_1m": "",
        }
        await fill(pilot, "output_per_1m", "12.5")
        await fill(pilot, "upstream_model", "gpt-5.4-2026-03-01")
        await fill(pilot, "max_output_tokens", "")
        await fill(pilot, "cache_read_per_1m", "0.25")
        await fill(pilot, "cache_write_1h_per_1m", "5")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: screen_name(pilot) == "ModelsScreen", "the form to close")
        await until(pilot, lambda: column(pilot, "#models", 4) == ["12.5"], "the new price")

        await pilot.press("t")
        await until(pilot, lambda: screen_name(pilot) == "ConfirmDialog", "the confirmation")
        await pilot.press("y")
        await until(pilot, lambda: column(pilot, "#models", 6) == ["no"], "shown disabled")
        assert not get_model("openai/gpt-5.4").enabled
        await pilot.press("t")  # enabling asks nothing
        await until(pilot, lambda: column(pilot, "#models", 6) == ["yes"], "shown enabled")
    model = get_model("openai/gpt-5.4")
    assert model.enabled and model.upstream_model == "gpt-5.4-2026-03-01"
    assert (model.output_per_1m_nanos, model.max_output_tokens) == (12_500_000_000, None)
    assert (model.cache_read_per_1m_nanos, model.cache_write_per_1m_nanos) == (250_000_000, None)
    assert model.cache_write_1h_per_1m_nanos == 5 * 10**9


async def test_add_an_alias_shown_in_the_table_and_refuse_a_bad_one(admin_env: AdminEnv) -> None:
    seed_catalog()
    async with create_admin_app(admin_env.config).run_test(size=SIZE) as pilot:
        await open_models(pilot)
        assert column(pilot, "#models", 7) == [""]
        await open_form(pilot, "a", "the alias form")
        await fill(pilot, "alias", "team/gpt")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "no slash" in text_of(pilot, "#form-error"), "the refusal")
        assert list_aliases() == {}
        await fill(pilot, "alias", "gpt-default")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: screen_name(pilot) == "ModelsScreen", "the form to close")
        await until(pilot, lambda: column(pilot, "#models", 7) == ["gpt-default"], "the alias")
        assert "aliases gpt-default" in text_of(pilot, "#model-detail")
    assert list_aliases() == {"gpt-default": "openai/gpt-5.4"}


async def test_remove_the_chosen_alias(admin_env: AdminEnv) -> None:
    seed_catalog()
    set_alias("gpt", "openai/gpt-5.4")
    set_alias("gpt-default", "openai/gpt-5.4")
    async with create_admin_app(admin_env.config).run_test(size=SIZE) as pilot:
        await open_models(pilot)
        await until(pilot, lambda: column(pilot, "#models", 7) == ["gpt, gpt-default"], "both")
        await open_form(pilot, "u", "the unalias form")
        choice = pilot.app.screen.query_one("#field-alias", Select)
        choice.value = "gpt-default"
        await pilot.pause()
        await pilot.press("ctrl+s")
        await until(pilot, lambda: screen_name(pilot) == "ModelsScreen", "the form to close")
        await until(pilot, lambda: column(pilot, "#models", 7) == ["gpt"], "one alias left")
    assert list_aliases() == {"gpt": "openai/gpt-5.4"}


async def test_unalias_without_aliases_only_warns(admin_env: AdminEnv) -> None:
    seed_catalog()
    async with create_admin_app(admin_env.config).run_test(size=SIZE, notifications=True) as pilot:
        await open_models(pilot)
        await pilot.press("u")
        await until(pilot, lambda: "openai/gpt-5.4 has no alias" in notifications(pilot), "warn")
        assert screen_name(pilot) == "ModelsScreen"


async def test_an_edit_keeps_the_context_window_the_form_does_not_show(
    admin_env: AdminEnv,
) -> None:
    """`models set --context-tokens` is what unknown-size media reserves: a price edit in the
    dashboard must not drop it back to gateway.default_context_tokens (an under-reservation)."""
    seed_catalog()
    set_model("openai/gpt-5.4", "2.5", "10", max_output_tokens=16000, context_tokens=1_000_000)
    async with create_admin_app(admin_env.config).run_test(size=SIZE) as pilot:
        await open_models(pilot)
        await open_form(pilot, "e", "the edit form")
        await fill(pilot, "output_per_1m", "12.5")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: screen_name(pilot) == "ModelsScreen", "the form to close")
        await until(pilot, lambda: column(pilot, "#models", 4) == ["12.5"], "the new price")
    model = get_model("openai/gpt-5.4")
    assert (model.output_per_1m_nanos, model.context_tokens) == (12_500_000_000, 1_000_000)
