"""Actions on what changed under the dashboard: a model removed by another process while its
edit form is open, and the database file gone while an action reads before its dialog. Each
ends in a clear message, writes nothing, and leaves the dashboard running."""

from __future__ import annotations

import os

import pytest

from admin_tui.app import create_admin_app
from codelace_box.accounts.users import create_user
from codelace_box.audit import list_entries
from codelace_box.catalog.aliases import list_aliases, set_alias
from codelace_box.catalog.models import find_model, set_model
from codelace_box.catalog.providers import add_provider
from tests.admin.pilot import (
    SECRET,
    AdminEnv,
    column,
    fill,
    notifications,
    open_form,
    screen_name,
    sqlite_file_only,
    text_of,
    until,
)
from tests.support import run_cli

pytestmark = pytest.mark.timeout(60)
SIZE = (100, 30)


@sqlite_file_only
async def test_an_action_failing_before_its_dialog_is_a_toast_not_the_end_of_the_app(
    admin_env: AdminEnv,
) -> None:
    """`r` (request limits) reads the defaults before its form opens: with the database file
    moved away that read fails, and a failing worker would take the whole app down."""
    create_user("ana@example.com")
    db_path = admin_env.config.database.path
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.press("f2")
        await until(pilot, lambda: column(pilot, "#users") == ["ana@example.com"], "ana")
        os.replace(db_path, f"{db_path}.away")
        try:
            await pilot.press("r")
            await until(
                pilot, lambda: any("is gone" in n for n in notifications(pilot)), "the toast"
            )
        finally:
            os.replace(f"{db_path}.away", db_path)
        assert app.is_running and screen_name(pilot) == "UsersScreen"
        await pilot.press("r")  # the file is back: the same action works
        await until(pilot, lambda: screen_name(pilot) == "FormDialog", "the limits form")


async def test_saving_the_edit_of_a_model_removed_meanwhile_does_not_bring_it_back(
    admin_env: AdminEnv,
) -> None:
    add_provider("openai", "openai", SECRET, "sk-meanwhile-0000000000001")
    set_model("openai/gpt-5.4", "2.5", "10")
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f3")
        await until(pilot, lambda: column(pilot, "#models") == ["openai/gpt-5.4"], "the model")
        await open_form(pilot, "e", "the edit form")
        removed = run_cli(admin_env.path, "models", "remove", "openai/gpt-5.4")
        assert removed.returncode == 0, removed.stderr
        await fill(pilot, "input_per_1m", "3")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: text_of(pilot, "#form-error") != "", "the refusal")
        assert "no longer in the catalog" in text_of(pilot, "#form-error")
        await pilot.press("escape")
        await until(pilot, lambda: column(pilot, "#models") == [], "the table without it")
    assert find_model("openai/gpt-5.4") is None
    assert [(e.client, e.command) for e in list_entries()] == [("cli", "models remove")]


async def test_removing_an_alias_moved_meanwhile_leaves_the_model_it_routes_to_now(
    admin_env: AdminEnv,
) -> None:
    """The unalias form of a model lists its aliases as they were when it opened: one moved to
    another model meanwhile (`models alias` moves it) must not be taken from that model."""
    add_provider("openai", "openai", SECRET, "sk-meanwhile-0000000000001")
    set_model("openai/gpt-5.4", "2.5", "10")
    set_model("openai/gpt-5.4-mini", "0.25", "2")
    set_alias("gpt", "openai/gpt-5.4")
    async with create_admin_app(admin_env.config).run_test(size=SIZE) as pilot:
        await pilot.press("f3")
        await until(pilot, lambda: "gpt" in column(pilot, "#models", 7), "the alias")
        gpt_row = column(pilot, "#models", 7).index("gpt")
        await pilot.press(*["down"] * gpt_row)
        await open_form(pilot, "u", "the unalias form")
        moved = run_cli(admin_env.path, "models", "alias", "gpt", "openai/gpt-5.4-mini")
        assert moved.returncode == 0, moved.stderr
        await pilot.press("ctrl+s")
        await until(
            pilot,
            lambda: screen_name(pilot) != "FormDialog" or text_of(pilot, "#form-error"),
            "an outcome",
        )
        assert screen_name(pilot) == "FormDialog"  # still open: nothing was removed
        assert "openai/gpt-5.4-mini" in text_of(pilot, "#form-error")
    assert list_aliases() == {"gpt": "openai/gpt-5.4-mini"}
    assert [(e.client, e.command) for e in list_entries()][-1] == ("cli", "models alias")


async def test_a_model_added_above_the_cursor_does_not_take_the_selection(
    admin_env: AdminEnv,
) -> None:
    """The cursor on the catalog's first row stayed on the first row when a refresh brought a
    model sorting before it (as a live feed follows its newest row): `t` then enabled a model
    the CLI had added disabled, which the operator never chose, without a question. The
    selection stays on the model the operator highlighted."""
    from codelace_box.catalog.models import get_model, set_model_enabled

    add_provider("openai", "openai", SECRET, "sk-meanwhile-models-0001")
    add_provider("anthropic", "openai", SECRET, "sk-meanwhile-models-0002")
    set_model("openai/a", "1", "2")
    async with create_admin_app(admin_env.config).run_test(size=SIZE) as pilot:
        await pilot.press("f3")
        await until(pilot, lambda: column(pilot, "#models") == ["openai/a"], "the model")
        set_model("anthropic/held-back", "1", "2")  # another process: added, then disabled
        set_model_enabled("anthropic/held-back", False)
        pilot.app.screen.reload()  # type: ignore[attr-defined]  # what the timer does
        await until(pilot, lambda: len(column(pilot, "#models")) == 2, "the new model")
        assert pilot.app.screen.selected_model().id == "openai/a"  # type: ignore[attr-defined]
        await pilot.press("t")
        await until(pilot, lambda: screen_name(pilot) == "ConfirmDialog", "the question")
        assert "openai/a" in text_of(pilot, "#confirm-message")
        await pilot.press("n")
    assert not get_model("anthropic/held-back").enabled
