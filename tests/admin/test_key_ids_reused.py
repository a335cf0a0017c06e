"""A provider key removed (by the CLI or another dashboard) while the operator has it selected
or its rotate form open: an action on the stale row must not land on another key (of another
provider, or a new one). SQLite used to give the next key added the removed key's id; since
migration 21 no engine gives an id twice, and the stale row is refused all the same."""

from __future__ import annotations

import pytest
from textual.pilot import Pilot

from admin_tui.app import create_admin_app
from codelace_box.catalog.providers import add_provider, add_provider_key, remove_provider_key
from codelace_box.db.models import ProviderKey
from tests.admin.pilot import (
    SECRET,
    AdminEnv,
    column,
    fill,
    notifications,
    open_form,
    screen_name,
    until,
)

pytestmark = pytest.mark.timeout(60)
SIZE = (110, 32)
OLD_OPENAI = "sk-reuse-openai-old-0000000000aaaa"
ANTHROPIC = "sk-ant-reuse-first-00000000000bbbb"
NEW_ANTHROPIC = "sk-ant-reuse-second-000000000cccc"


def three_keys() -> int:
    """openai with two keys, anthropic with one; the id of openai's newest key."""
    add_provider("openai", "openai", SECRET, "sk-reuse-openai-kept-000000000dddd", "")
    add_provider("anthropic", "anthropic", SECRET, ANTHROPIC, "")
    return int(add_provider_key("openai", SECRET, OLD_OPENAI).id)


def replaced_by_another_providers_key(old_id: int) -> ProviderKey:
    """What another admin did meanwhile: the key removed, an anthropic key added."""
    remove_provider_key("openai", old_id)
    added = add_provider_key("anthropic", SECRET, NEW_ANTHROPIC)
    assert added.id != old_id  # never the removed key's id (SQLite: migration 21)
    return added


async def select_openai_newest(pilot: Pilot[None]) -> None:
    await pilot.press("f4")
    await until(pilot, lambda: screen_name(pilot) == "ProvidersScreen", "providers")
    await until(pilot, lambda: column(pilot, "#providers", 0)[:1] == ["anthropic"], "rows")
    await pilot.press("down", "tab")  # openai, then its keys table
    await until(pilot, lambda: len(column(pilot, "#keys")) == 2, "openai's two keys")
    await pilot.press("down")  # its newest key


async def test_rotating_a_key_removed_meanwhile_leaves_the_key_now_under_its_id(
    admin_env: AdminEnv,
) -> None:
    old_id = three_keys()
    async with create_admin_app(admin_env.config).run_test(size=SIZE) as pilot:
        await select_openai_newest(pilot)
        await open_form(pilot, "o", "the rotate form")
        added = replaced_by_another_providers_key(old_id)
        await fill(pilot, "key", "sk-reuse-openai-new-0000000000eeee")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: screen_name(pilot) == "ConfirmDialog", "the confirmation")
        await pilot.press("y")
        await until(pilot, lambda: "no longer" in _form_error(pilot), "the refusal")
    assert ProviderKey.get_by_id(added.id).enabled  # anthropic's new key stays in rotation
    assert ProviderKey.select().count() == 3  # and the new openai key was not added


async def test_disabling_a_stale_key_row_refuses_instead_of_disabling_another_key(
    admin_env: AdminEnv,
) -> None:
    old_id = three_keys()
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await select_openai_newest(pilot)
        added = replaced_by_another_providers_key(old_id)
        await pilot.press("x")
        await until(pilot, lambda: screen_name(pilot) == "ConfirmDialog", "the confirmation")
        await pilot.press("y")
        await until(pilot, lambda: any("no longer" in n for n in notifications(pilot)), "no")
    assert ProviderKey.get_by_id(added.id).enabled


async def test_removing_a_stale_key_row_refuses_instead_of_removing_its_successor(
    admin_env: AdminEnv,
) -> None:
    old_id = three_keys()
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await select_openai_newest(pilot)
        remove_provider_key("openai", old_id)
        again = add_provider_key("openai", SECRET, "sk-reuse-openai-again-00000000ffff")
        assert again.id != old_id
        await pilot.press("r")
        await until(pilot, lambda: screen_name(pilot) == "ConfirmDialog", "the confirmation")
        await pilot.press("y")
        await until(pilot, lambda: any("no longer" in n for n in notifications(pilot)), "no")
    assert ProviderKey.get_or_none(ProviderKey.id == again.id) is not None


def _form_error(pilot: Pilot[None]) -> str:
    from tests.admin.pilot import text_of

    return text_of(pilot, "#form-error") if screen_name(pilot) == "FormDialog" else ""
