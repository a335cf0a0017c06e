"""The operator's edits in the dashboard: edit and remove providers, remove provider keys, put a
failing key back only after a probe, remove models, confirm a tenfold price change, and create
and revoke a user's API keys; each checked in the database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from textual.pilot import Pilot
from textual.widgets import Button

from admin_tui.app import create_admin_app
from codelace_box.accounts.keys import hash_key, list_keys
from codelace_box.accounts.users import create_user
from codelace_box.catalog.models import get_model, set_model
from codelace_box.catalog.providers import add_provider, add_provider_key, get_provider
from codelace_box.db.models import CatalogModel, Provider, ProviderKey
from tests.admin.pilot import (
    SECRET,
    AdminEnv,
    column,
    fill,
    notifications,
    open_form,
    screen_name,
    text_of,
    until,
)
from tests.fakes.models_upstream import FakeModelsUpstream

pytestmark = pytest.mark.timeout(60)
SIZE = (110, 32)
GOOD_KEY = "sk-edits-good-key-0123456789ab"
BAD_KEY = "sk-edits-bad-key-ba9876543210"


@pytest.fixture
def upstream() -> Iterator[FakeModelsUpstream]:
    fake = FakeModelsUpstream("openai", {GOOD_KEY}).start()
    yield fake
    fake.stop()


async def go(pilot: Pilot[None], key: str, screen: str, table: str) -> None:
    await pilot.press(key)
    await until(pilot, lambda: screen_name(pilot) == screen, screen)
    await until(pilot, lambda: column(pilot, table) != [], f"rows of {table}")


async def answer(pilot: Pilot[None], expect: str, key: str = "y") -> str:
    await until(pilot, lambda: screen_name(pilot) == "ConfirmDialog", "a confirmation")
    message = text_of(pilot, "#confirm-message")
    assert expect in message, message
    await pilot.press(key)
    return message


async def test_edit_and_remove_a_provider_refused_while_a_model_uses_it(
    admin_env: AdminEnv,
) -> None:
    add_provider("used", "openai", SECRET, "sk-edits-used-000000001")
    set_model("used/m", "1", "2")
    async with create_admin_app(admin_env.config).run_test(size=SIZE, notifications=True) as pilot:
        await go(pilot, "f4", "ProvidersScreen", "#providers")
        await open_form(pilot, "u", "the edit form")
        await fill(pilot, "base_url", "https://edited.example/v1")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: screen_name(pilot) == "ProvidersScreen", "the form to close")
        await until(
            pilot, lambda: get_provider("used").base_url == "https://edited.example/v1", "saved"
        )
        await pilot.press("d")
        await answer(pilot, "Remove used")
        await until(pilot, lambda: any("used/m" in n for n in notifications(pilot)), "refusal")
        assert Provider.get_or_none(Provider.name == "used") is not None

        CatalogModel.delete().execute()
        await pilot.press("d")
        await answer(pilot, "Remove used")
        await until(pilot, lambda: column(pilot, "#providers") == [], "the row to go")
    assert Provider.select().count() == 0 and ProviderKey.select().count() == 0


async def test_remove_a_key_and_put_back_a_failing_one_only_after_its_probe(
    admin_env: AdminEnv, upstream: FakeModelsUpstream
) -> None:
    add_provider("p", "openai", SECRET, GOOD_KEY, upstream.base_url)
    bad = add_provider_key("p", SECRET, BAD_KEY)
    extra = add_provider_key("p", SECRET, "sk-edits-extra-key-00000000")
    ProviderKey.update(failing=True, failure_reason="HTTP 401").execute()
    async with create_admin_app(admin_env.config).run_test(size=SIZE, notifications=True) as pilot:
        await go(pilot, "f4", "ProvidersScreen", "#keys")
        await pilot.press("tab")  # the keys table
        await until(pilot, lambda: len(column(pilot, "#keys")) == 3, "three keys")
        await pilot.press("down")  # the bad key
        await pilot.press("x")
        await answer(pilot, "Test it and put it back")
        await until(pilot, lambda: "stays out of rotation" in text_of(pilot, "#key-check"), "no")
        assert ProviderKey.get_by_id(bad.id).failing

        await pilot.press("up")  # the good key
        await pilot.press("x")
        await answer(pilot, "Test it and put it back")
        await until(pilot, lambda: not ProviderKey.get_by_id(1).failing, "the good key back")

        await pilot.press("down", "down")  # the extra key
        await pilot.press("r")
        await answer(pilot, "Remove key")
        await until(pilot, lambda: len(column(pilot, "#keys")) == 2, "the key to go")
    assert ProviderKey.get_or_none(ProviderKey.id == extra.id) is None


async def test_remove_a_model_and_confirm_a_tenfold_price_change(admin_env: AdminEnv) -> None:
    add_provider("openai", "openai", SECRET, "sk-edits-models-00000001")
    set_model("openai/a", "2.5", "10")
    set_model("openai/b", "1", "1")
    async with create_admin_app(admin_env.config).run_test(size=SIZE) as pilot:
        await go(pilot, "f3", "ModelsScreen", "#models")
        await pilot.press("e")  # openai/a
        await until(pilot, lambda: screen_name(pilot) == "FormDialog", "the edit form")
        await fill(pilot, "input_per_1m", "250")
        await pilot.press("ctrl+s")
        await answer(pilot, "input price: 2.5 -> 250", key="n")
        await until(pilot, lambda: screen_name(pilot) == "FormDialog", "back in the form")
        assert get_model("openai/a").input_per_1m_nanos == 2_500_000_000
        await fill(pilot, "input_per_1m", "25")  # exactly tenfold: not asked
        await pilot.press("ctrl+s")
        await until(pilot, lambda: screen_name(pilot) == "ModelsScreen", "saved without asking")
        await until(pilot, lambda: get_model("openai/a").input_per_1m_nanos == 25 * 10**9, "25")

        await pilot.press("down", "d")  # openai/b
        await answer(pilot, "Remove openai/b")
        await until(pilot, lambda: column(pilot, "#models") == ["openai/a"], "the row to go")
    assert CatalogModel.get_or_none(CatalogModel.id == "openai/b") is None


async def _create_a_key_named_laptop(pilot: Pilot[None]) -> None:
    """From the users list, the first user's detail, its key form: a key named laptop made."""
    await go(pilot, "f2", "UsersScreen", "#users")
    await pilot.press("enter")
    await until(pilot, lambda: screen_name(pilot) == "UserDetailScreen", "the detail")
    await open_form(pilot, "c", "the name form")
    await fill(pilot, "name", "laptop")
    await pilot.press("ctrl+s")


async def test_create_a_key_shows_it_once_and_revoke_it(admin_env: AdminEnv) -> None:
    user = create_user("kim@example.com")
    async with create_admin_app(admin_env.config).run_test(size=SIZE) as pilot:
        await _create_a_key_named_laptop(pilot)
        shown = await answer(pilot, "not shown again", key="y")
        [key] = list_keys(user.id)
        full = shown.split()[0]
        assert full.startswith(key.key_prefix) and key.name == "laptop"
        assert hash_key(full) == key.key_hash
        await until(pilot, lambda: column(pilot, "#keys") == [key.uuid[:8]], "the key row")
        await pilot.press("k")
        await answer(pilot, "Revoke key")
        await until(pilot, lambda: column(pilot, "#keys") == [], "the key to go")
    assert list_keys(user.id) == []


async def test_the_new_key_is_shown_with_no_cancel_that_would_not_undo_it(
    admin_env: AdminEnv,
) -> None:
    """The new key was shown in a yes/no question whose focused button read 'Cancel': Enter
    there left the operator believing nothing was made, while the key was minted and working
    (never stored by anyone). It is shown with one button, Done, focused; the key stays."""
    user = create_user("kim@example.com")
    async with create_admin_app(admin_env.config).run_test(size=SIZE) as pilot:
        await _create_a_key_named_laptop(pilot)
        await until(pilot, lambda: screen_name(pilot) == "ConfirmDialog", "the new key")
        labels = [str(b.label) for b in pilot.app.screen.query(Button)]
        assert not any("Cancel" in label for label in labels), labels
        assert str(pilot.app.focused.label).startswith("Done")  # type: ignore[union-attr]
        await pilot.press("enter")
        await until(pilot, lambda: screen_name(pilot) == "UserDetailScreen", "the detail again")
    assert [k.name for k in list_keys(user.id)] == ["laptop"]


async def test_the_tenfold_question_shows_both_prices_exactly(admin_env: AdminEnv) -> None:
    """The question before a large price change showed the prices as floats at 6 significant
    digits: a typed 1234.5678 read "1234.57", a nano-dollar price "1e-09", so the operator
    confirmed a figure other than the one saved. Both are shown exactly, as typed and stored."""
    add_provider("openai", "openai", SECRET, "sk-edits-models-00000001")
    set_model("openai/a", "0.000000001", "10")
    async with create_admin_app(admin_env.config).run_test(size=SIZE) as pilot:
        await go(pilot, "f3", "ModelsScreen", "#models")
        await pilot.press("e")
        await until(pilot, lambda: screen_name(pilot) == "FormDialog", "the edit form")
        await fill(pilot, "input_per_1m", "1234.5678")
        await fill(pilot, "output_per_1m", "123456.789")
        await pilot.press("ctrl+s")
        message = await answer(pilot, "tenfold change", key="n")
        assert "input price: 0.000000001 -> 1234.5678 USD" in message, message
        assert "output price: 10 -> 123456.789 USD" in message, message
    assert get_model("openai/a").input_per_1m_nanos == 1
