"""A form opened before another admin (the CLI, a second dashboard) changed the same thing: its
save must not silently put back the values it was filled with. It refuses, saves nothing, and
says to reopen the form; what the other admin set stays."""

from __future__ import annotations

import pytest
from textual.pilot import Pilot
from textual.widgets import Select

from admin_tui.app import create_admin_app
from codelace_box.accounts.keys import create_key, update_key
from codelace_box.accounts.limits import set_user_limits
from codelace_box.accounts.users import create_user, get_user
from codelace_box.catalog import models
from codelace_box.catalog import providers as catalog
from codelace_box.db.models import ApiKey
from tests.admin.pilot import SECRET, AdminEnv, column, fill, open_form, screen_name, text_of, until

pytestmark = pytest.mark.timeout(60)
SIZE = (120, 34)
MEANWHILE = "changed meanwhile"


async def refused(pilot: Pilot[None]) -> None:
    await pilot.press("ctrl+s")
    await until(pilot, lambda: screen_name(pilot) != "FormDialog" or error(pilot), "an outcome")
    assert screen_name(pilot) == "FormDialog"  # still open: nothing was saved
    assert MEANWHILE in error(pilot)


def error(pilot: Pilot[None]) -> str:
    return text_of(pilot, "#form-error")


async def open_detail(pilot: Pilot[None], email: str) -> None:
    await pilot.press("f2")
    await until(pilot, lambda: column(pilot, "#users") == [email], email)
    await pilot.press("enter")
    await until(pilot, lambda: screen_name(pilot) == "UserDetailScreen", "the detail")


async def test_key_limits_changed_meanwhile_are_not_put_back(admin_env: AdminEnv) -> None:
    key = create_key(create_user("alice@example.com").id, "ci").key
    async with create_admin_app(admin_env.config).run_test(size=SIZE) as pilot:
        await open_detail(pilot, "alice@example.com")
        await until(pilot, lambda: len(column(pilot, "#keys")) == 1, "the key")
        await open_form(pilot, "l", "the key limits form")
        update_key(key.uuid, {"expires_at": "30d"}, relative=True)  # the CLI, meanwhile
        await fill(pilot, "limit_usd", "6")
        await refused(pilot)
    stored = ApiKey.get_by_id(key.id)
    assert stored.expires_at is not None and stored.limit_nanos is None


async def test_request_limits_changed_meanwhile_are_not_put_back(admin_env: AdminEnv) -> None:
    create_user("alice@example.com")
    async with create_admin_app(admin_env.config).run_test(size=SIZE) as pilot:
        await pilot.press("f2")
        await until(pilot, lambda: column(pilot, "#users") == ["alice@example.com"], "alice")
        await open_form(pilot, "r", "the request limits form")
        set_user_limits(get_user("alice@example.com"), {"rpm": "5"})  # the CLI, meanwhile
        await fill(pilot, "concurrent", "3")
        await refused(pilot)
    user = get_user("alice@example.com")
    assert (user.rpm, user.max_concurrent) == (5, None)


async def test_a_model_edited_meanwhile_is_not_put_back(admin_env: AdminEnv) -> None:
    catalog.add_provider("openai", "openai", SECRET, "sk-lost-update-0000000000001111")
    models.set_model("openai/gpt-5.4", "2.5", "10")
    async with create_admin_app(admin_env.config).run_test(size=SIZE) as pilot:
        await pilot.press("f3")
        await until(pilot, lambda: column(pilot, "#models") == ["openai/gpt-5.4"], "the model")
        await open_form(pilot, "e", "the edit form")
        models.set_model("openai/gpt-5.4", "2.5", "12")  # the CLI, meanwhile: a new price
        await fill(pilot, "input_per_1m", "3")
        await refused(pilot)
    model = models.get_model("openai/gpt-5.4")
    assert (model.input_per_1m_nanos, model.output_per_1m_nanos) == (2_500_000_000, 12_000_000_000)


async def test_a_provider_edited_meanwhile_is_not_put_back(admin_env: AdminEnv) -> None:
    catalog.add_provider("gw", "openai", SECRET, "sk-lost-update-0000000000002222")
    async with create_admin_app(admin_env.config).run_test(size=SIZE) as pilot:
        await pilot.press("f4")
        await until(pilot, lambda: column(pilot, "#providers") == ["gw"], "the provider")
        await open_form(pilot, "u", "the edit form")
        catalog.update_provider("gw", base_url="https://gw.example.com/v1")  # the CLI, meanwhile
        pilot.app.screen.query_one("#field-kind", Select).value = "anthropic"
        await refused(pilot)
    provider = catalog.get_provider("gw")
    assert (provider.kind, provider.base_url) == ("openai", "https://gw.example.com/v1")
