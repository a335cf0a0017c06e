"""Budgets and limits in the dashboard: a key's cap, reset, expiry and models, and a user's
request limits, set through the forms (bad input refused in the form, nothing written), and
the spend against the cap in the keys table."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from textual.widgets import Select

from admin_tui.app import create_admin_app
from codelace_box.accounts.keys import create_key, update_key
from codelace_box.accounts.users import create_user, get_user
from codelace_box.audit import list_entries
from codelace_box.catalog import models
from codelace_box.catalog import providers as catalog
from codelace_box.db.core import day_of, utcnow
from codelace_box.db.models import ApiKey, KeyDayUsage, KeyUsage
from tests.admin.pilot import (
    AdminEnv,
    column,
    fill,
    make_env,
    open_form,
    screen_name,
    text_of,
    until,
)

pytestmark = pytest.mark.timeout(60)
SIZE = (120, 34)


async def open_detail(pilot, email: str) -> None:  # type: ignore[no-untyped-def]
    await pilot.press("f2")
    await until(pilot, lambda: column(pilot, "#users") == [email], email)
    await pilot.press("enter")
    await until(pilot, lambda: screen_name(pilot) == "UserDetailScreen", "the detail")


async def test_key_limits_form_sets_and_clears_and_refuses_bad_input(
    admin_env: AdminEnv,
) -> None:
    catalog.add_provider("acme", "openai", "secret", "sk-acme-key-0001", "http://127.0.0.1:9/v1")
    models.set_model("acme/m1", "2", "8")
    alice = create_user("alice@example.com")
    key = create_key(alice.id, "ci").key
    spent = {"user": alice.id, "requests": 3, "cost_nanos": 1_250_000_000}  # today, as settled
    KeyUsage.create(api_key=key.id, **spent)
    KeyDayUsage.create(api_key_id=key.id, day=day_of(utcnow()), **spent)
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await open_detail(pilot, "alice@example.com")
        await until(pilot, lambda: column(pilot, "#keys", 3) == ["$1.25"], "the spend, no cap")
        await open_form(pilot, "l", "the key limits form")
        await fill(pilot, "limit_usd", "-5")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "limit_usd" in text_of(pilot, "#form-error"), "the refusal")
        await fill(pilot, "limit_usd", "20")
        await fill(pilot, "models", "acme/m1, nope/x")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "nope/x" in text_of(pilot, "#form-error"), "unknown model")
        assert ApiKey.get_by_id(key.id).limit_nanos is None  # nothing written yet
        await fill(pilot, "models", "acme/m1")
        await fill(pilot, "expires", "30d")
        pilot.app.screen.query_one("#field-limit_reset", Select).value = "monthly"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: screen_name(pilot) == "UserDetailScreen", "the form closed")
        await until(
            pilot, lambda: column(pilot, "#keys", 3) == ["$1.25 / $20.00 monthly"], "the cap"
        )
        stored = ApiKey.get_by_id(key.id)
        assert (stored.limit_nanos, stored.limit_reset) == (20 * 10**9, "monthly")
        assert json.loads(stored.allowed_models) == ["acme/m1"] and stored.expires_at is not None

        await pilot.press("l")  # clear them all again
        await until(pilot, lambda: screen_name(pilot) == "FormDialog", "the form again")
        for field in ("limit_usd", "models", "expires"):
            await fill(pilot, field, "")
        pilot.app.screen.query_one("#field-limit_reset", Select).value = "never"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: screen_name(pilot) == "UserDetailScreen", "the form closed")
        await until(pilot, lambda: column(pilot, "#keys", 3) == ["$1.25"], "no cap any more")
    stored = ApiKey.get_by_id(key.id)
    assert (stored.limit_nanos, stored.limit_reset, stored.expires_at) == (None, None, None)
    assert stored.allowed_models is None


async def test_the_cap_of_an_expired_key_changes_without_touching_its_expiry(
    admin_env: AdminEnv,
) -> None:
    """The form sends back the expiry it showed: unchanged, it is left alone, so a key that
    has expired can have its cap changed without being refused for an expiry in the past."""
    alice = create_user("alice@example.com")
    key = create_key(alice.id, "old").key
    expired = utcnow() - timedelta(days=2)
    ApiKey.update(expires_at=expired).where(ApiKey.id == key.id).execute()
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await open_detail(pilot, "alice@example.com")
        await until(pilot, lambda: len(column(pilot, "#keys")) == 1, "the expired key")
        await open_form(pilot, "l", "the key limits form")
        await fill(pilot, "limit_usd", "5")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: screen_name(pilot) == "UserDetailScreen", "the form closed")
    stored = ApiKey.get_by_id(key.id)
    assert (stored.limit_nanos, stored.expires_at) == (5 * 10**9, expired)


async def test_the_cap_of_a_key_scoped_to_a_removed_model_changes_without_widening_it(
    admin_env: AdminEnv,
) -> None:
    """A key may call only a model since removed from the catalog (it answers 404 for it):
    the form sends back the models it showed, which the catalog no longer knows. Unchanged,
    they are left alone (as `keys update --limit-usd` leaves them), so its cap changes; the
    only way out was to clear the list, letting the key call every model."""
    catalog.add_provider("acme", "openai", "k" * 40, "sk-acme-000000000000001")
    models.set_model("acme/m1", "1", "2")
    models.set_model("acme/m2", "1", "2")
    alice = create_user("alice@example.com")
    key = create_key(alice.id, "scoped", {"allowed_models": ["acme/m1"]}).key
    models.remove_model("acme/m1")
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await open_detail(pilot, "alice@example.com")
        await until(pilot, lambda: column(pilot, "#keys", 7) == ["acme/m1"], "the scoped key")
        await open_form(pilot, "l", "the key limits form")
        await fill(pilot, "limit_usd", "5")
        await pilot.press("ctrl+s")
        await until(
            pilot,
            lambda: screen_name(pilot) != "FormDialog" or text_of(pilot, "#form-error"),
            "an outcome",
        )
        assert screen_name(pilot) == "UserDetailScreen", text_of(pilot, "#form-error")
    stored = ApiKey.get_by_id(key.id)
    assert stored.limit_nanos == 5 * 10**9
    assert json.loads(stored.allowed_models) == ["acme/m1"]


async def test_limits_typed_with_thousands_commas_are_read(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The dashboard writes counts with thousands commas (the users table) and the token
    cap reads "1,000", but the rpm, concurrent and key cap fields refused it: read as the
    portal's top-up reads it (a decimal comma, "10,50", still refused)."""
    env = make_env(tmp_path)
    bob = create_user("bob@example.com")
    key = create_key(bob.id, "ci").key
    app = create_admin_app(env.config)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await open_detail(pilot, "bob@example.com")
        await open_form(pilot, "r", "the request limits form")
        await fill(pilot, "rpm", "1,000")
        await fill(pilot, "concurrent", "1,500")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "1000 per minute" in text_of(pilot, "#summary"), "saved")
        await until(pilot, lambda: len(column(pilot, "#keys")) == 1, "the key")
        await open_form(pilot, "l", "the key limits form")
        await fill(pilot, "limit_usd", "10,50")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "limit_usd" in text_of(pilot, "#form-error"), "the refusal")
        await fill(pilot, "limit_usd", "1,250.50")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: screen_name(pilot) == "UserDetailScreen", "the form closed")
    stored = get_user("bob@example.com")
    assert (stored.rpm, stored.max_concurrent) == (1000, 1500)
    assert ApiKey.get_by_id(key.id).limit_nanos == 1_250_500_000_000


async def test_a_key_cap_typed_as_a_lone_dollar_sign_is_refused_not_cleared(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A "$" alone (the amount's digits deleted to type another) is no amount: refused, the
    key's cap kept; the "$" taken off "$20" left a blank field, which clears the cap."""
    env = make_env(tmp_path)
    bob = create_user("bob@example.com")
    key = create_key(bob.id, "ci", {"limit_usd": "20"}).key
    app = create_admin_app(env.config)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await open_detail(pilot, "bob@example.com")
        await until(pilot, lambda: len(column(pilot, "#keys")) == 1, "the key")
        await open_form(pilot, "l", "the key limits form")
        await fill(pilot, "limit_usd", "$")
        await pilot.press("ctrl+s")
        closed = lambda: screen_name(pilot) == "UserDetailScreen"  # noqa: E731
        refused = lambda: "limit_usd" in text_of(pilot, "#form-error")  # noqa: E731
        await until(pilot, lambda: closed() or refused(), "the refusal or the save")
        assert not closed(), "saved"
    assert ApiKey.get_by_id(key.id).limit_nanos == 20_000_000_000


async def test_request_limits_form_sets_an_accounts_limits(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = make_env(tmp_path, limits={"rpm": 60})
    create_user("bob@example.com")
    app = create_admin_app(env.config)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await open_detail(pilot, "bob@example.com")
        await until(
            pilot,
            lambda: (
                "60 per minute (default), unlimited at once (default)" in text_of(pilot, "#summary")
            ),
            "the defaults",
        )
        await open_form(pilot, "r", "the request limits form")
        await fill(pilot, "rpm", "many")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "rpm" in text_of(pilot, "#form-error"), "the refusal")
        assert get_user("bob@example.com").rpm is None
        await fill(pilot, "rpm", "0")
        await fill(pilot, "concurrent", "3")
        await pilot.press("ctrl+s")
        await until(
            pilot,
            lambda: "unlimited per minute, 3 at once" in text_of(pilot, "#summary"),
            "the new limits",
        )
    bob = get_user("bob@example.com")
    assert (bob.rpm, bob.max_concurrent) == (0, 3)


async def test_saving_only_a_new_cap_keeps_the_expiry_to_the_microsecond(
    admin_env: AdminEnv,
) -> None:
    """The form is filled with the stored expiry and sends it back: cut to the second, a cap
    change also moved the expiry and the audit log showed a change nobody made."""
    key = create_key(create_user("alice@example.com").id, "ci").key
    key = update_key(key.uuid, {"limit_usd": "5", "expires_at": "30d"}, relative=True)
    assert key.expires_at.microsecond  # type: ignore[union-attr]
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=SIZE) as pilot:
        await open_detail(pilot, "alice@example.com")
        await until(pilot, lambda: column(pilot, "#keys", 3) == ["$0.00 / $5.00 total"], "cap")
        await open_form(pilot, "l", "the key limits form")
        await fill(pilot, "limit_usd", "6")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: screen_name(pilot) == "UserDetailScreen", "the form closed")
    assert ApiKey.get_by_id(key.id).expires_at == key.expires_at
    entry = list_entries()[-1]
    changed = {k for k in entry.after or {} if (entry.before or {}).get(k) != entry.after[k]}
    assert (entry.command, changed) == ("keys update", {"limit_usd"})


async def test_a_key_made_and_edited_in_the_dashboard_carries_whether_it_manages_keys(
    admin_env: AdminEnv,
) -> None:
    """The dashboard's new-key form can make a key for a tool (it may not manage the account's
    keys through the API), the keys table shows it, the limits form flips it, and the audit log
    has each change."""
    carol = create_user("carol@example.com")
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await open_detail(pilot, "carol@example.com")
        await open_form(pilot, "c", "the new key form")
        await fill(pilot, "name", "tool")
        pilot.app.screen.query_one("#field-manage_keys", Select).value = "no"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: screen_name(pilot) == "ConfirmDialog", "the new key")
        await pilot.press("y")
        [key] = list(ApiKey.select().where(ApiKey.user == carol.id))
        assert key.can_manage_keys is False
        await until(pilot, lambda: column(pilot, "#keys", 5) == ["no"], "the flag shown")
        await open_form(pilot, "l", "the key limits form")
        select = pilot.app.screen.query_one("#field-manage_keys", Select)
        assert select.value == "no"  # the form starts from what is stored
        select.value = "yes"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: column(pilot, "#keys", 5) == ["yes"], "the flag flipped")
    assert ApiKey.get_by_id(key.id).can_manage_keys is True
    changes = [(e.command, (e.before or {}).get("can_manage_keys"), e.after["can_manage_keys"])
               for e in list_entries() if e.target == key.uuid]  # fmt: skip
    assert changes == [("keys create", None, False), ("keys update", False, True)]


def test_the_expiry_example_of_the_key_form_is_a_year_ahead_not_a_fixed_date() -> None:
    """A fixed example (2026-12-31) would soon be a time in the past, which is refused."""
    from admin_tui.screens.user_detail import limit_fields

    placeholder = next(f.placeholder for f in limit_fields(None) if f.name == "expires")
    days = [(utcnow() + timedelta(days=365 + d)).date().isoformat() for d in (-1, 0, 1)]
    assert any(placeholder == f"{day}T00:00:00Z or 30d" for day in days), placeholder
