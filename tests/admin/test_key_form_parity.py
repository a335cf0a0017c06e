"""The key limits form (`l` in a user's detail) takes what `keys update` takes: the words that
clear a limit on the command line (none, null, never, all) clear it here too (but for the
models, 'none' and 'never' are refused there and here), and a key can be renamed, as
`keys update --name` does."""

from __future__ import annotations

import pytest
from textual.widgets import Select

from admin_tui.app import create_admin_app
from codelace_box.accounts.keys import create_key, update_key
from codelace_box.accounts.users import create_user
from codelace_box.audit import list_entries
from codelace_box.catalog import models
from codelace_box.catalog import providers as catalog
from codelace_box.db.models import ApiKey
from tests.admin.pilot import AdminEnv, column, fill, open_form, screen_name, text_of, until
from tests.admin.test_limits import open_detail

pytestmark = pytest.mark.timeout(60)
SIZE = (120, 34)


async def test_the_cli_words_that_clear_a_limit_clear_it_in_the_form(admin_env: AdminEnv) -> None:
    catalog.add_provider("acme", "openai", "secret", "sk-acme-key-0001", "http://127.0.0.1:9/v1")
    models.set_model("acme/m1", "2", "8")
    key = create_key(create_user("alice@example.com").id, "ci").key
    limits = {"limit_usd": "20", "expires_at": "30d", "allowed_models": ["acme/m1"]}
    update_key(key.uuid, limits, relative=True)
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=SIZE) as pilot:
        await open_detail(pilot, "alice@example.com")
        await until(pilot, lambda: column(pilot, "#keys", 3) == ["$0.00 / $20.00 total"], "cap")
        await open_form(pilot, "l", "the key limits form")
        await fill(pilot, "limit_usd", "none")
        await fill(pilot, "expires", "never")
        await fill(pilot, "models", "all")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: screen_name(pilot) == "UserDetailScreen", "the form closed")
        await until(pilot, lambda: column(pilot, "#keys", 3) == ["$0.00"], "no cap any more")
    stored = ApiKey.get_by_id(key.id)
    assert (stored.limit_nanos, stored.expires_at, stored.allowed_models) == (None, None, None)


async def test_models_none_is_refused_in_the_form_not_read_as_every_model(
    admin_env: AdminEnv,
) -> None:
    """'none' in the form's models lifted the key's list (every model allowed), the opposite
    of what an operator typing it means; refused as `keys update --models none` is."""
    catalog.add_provider("acme", "openai", "secret", "sk-acme-key-0001", "http://127.0.0.1:9/v1")
    models.set_model("acme/m1", "2", "8")
    key = create_key(create_user("alice@example.com").id, "ci").key
    update_key(key.uuid, {"allowed_models": ["acme/m1"]})
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=SIZE) as pilot:
        await open_detail(pilot, "alice@example.com")
        await open_form(pilot, "l", "the key limits form")
        await fill(pilot, "models", "none")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "'all'" in text_of(pilot, "#form-error"), "the refusal")
    assert ApiKey.get_by_id(key.id).allowed_models == '["acme/m1"]'


async def test_a_key_is_renamed_in_the_form(admin_env: AdminEnv) -> None:
    key = create_key(create_user("alice@example.com").id, "laptop").key
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=SIZE) as pilot:
        await open_detail(pilot, "alice@example.com")
        await until(pilot, lambda: column(pilot, "#keys", 2) == ["laptop"], "the key")
        await open_form(pilot, "l", "the key form")
        await fill(pilot, "name", "ci runner")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: column(pilot, "#keys", 2) == ["ci runner"], "the new name")
    assert ApiKey.get_by_id(key.id).name == "ci runner"
    entry = list_entries()[-1]
    assert (entry.command, entry.before["name"], entry.after["name"]) == (  # type: ignore[index]
        "keys update",
        "laptop",
        "ci runner",
    )


async def test_a_new_key_is_made_with_its_limits(admin_env: AdminEnv) -> None:
    """`keys create --limit-usd 20 --limit-reset monthly --expires 30d --models ...` makes a key
    that is capped from its first request; the dashboard's new-key form asked only a name, so
    the key existed, shown and copied, without its budget until a second form."""
    catalog.add_provider("acme", "openai", "secret", "sk-acme-key-0001", "http://127.0.0.1:9/v1")
    models.set_model("acme/m1", "2", "8")
    alice = create_user("alice@example.com")
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=SIZE) as pilot:
        await open_detail(pilot, "alice@example.com")
        await open_form(pilot, "c", "the new key form")
        await fill(pilot, "name", "ci")
        await fill(pilot, "limit_usd", "-1")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "limit_usd" in text_of(pilot, "#form-error"), "the refusal")
        assert list(ApiKey.select().where(ApiKey.user == alice.id)) == []  # nothing minted
        await fill(pilot, "limit_usd", "20")
        await fill(pilot, "expires", "30d")
        await fill(pilot, "models", "acme/m1")
        pilot.app.screen.query_one("#field-limit_reset", Select).value = "monthly"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: screen_name(pilot) == "ConfirmDialog", "the new key")
        await pilot.press("y")
        await until(pilot, lambda: column(pilot, "#keys", 3) == ["$0.00 / $20.00 monthly"], "cap")
    [key] = list(ApiKey.select().where(ApiKey.user == alice.id))
    assert (key.limit_nanos, key.limit_reset, key.allowed_models) == (
        20 * 10**9,
        "monthly",
        '["acme/m1"]',
    )
    assert key.expires_at is not None


async def test_a_new_key_for_a_disabled_account_is_refused_as_keys_create_refuses_it(
    admin_env: AdminEnv,
) -> None:
    """A disabled account's requests are a 403 (SPEC): a key made for it could not be used."""
    from codelace_box.accounts.users import set_user_status

    frozen = create_user("frozen@example.com")
    set_user_status("frozen@example.com", "disabled")
    before = list_entries()
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=SIZE) as pilot:
        await open_detail(pilot, "frozen@example.com")
        await open_form(pilot, "c", "the new key form")
        await fill(pilot, "name", "ci")
        await pilot.press("ctrl+s")
        said = lambda: text_of(pilot, "#form-error")  # noqa: E731
        await until(pilot, lambda: "frozen@example.com is disabled" in said(), "the refusal")
    assert list(ApiKey.select().where(ApiKey.user == frozen.id)) == []
    assert list_entries() == before
