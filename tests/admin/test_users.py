"""Users screen: search, create, adjust balance (ledger + doctor), disable/enable, details and
key revocation, all driven through the UI and checked in the database."""

from __future__ import annotations

from datetime import datetime

import pytest

from admin_tui.app import create_admin_app
from codelace_box.accounts.keys import create_key, list_keys
from codelace_box.accounts.users import create_user, find_user, get_user
from codelace_box.billing.credits import adjust_balance
from codelace_box.billing.ledger import entries_for, find_mismatches
from codelace_box.db.models import ApiKey, LedgerEntry, Payment
from tests.admin.pilot import (
    AdminEnv,
    add_usage,
    column,
    fill,
    notifications,
    open_form,
    screen_name,
    text_of,
    until,
)
from tests.support import run_cli

pytestmark = pytest.mark.timeout(60)
SIZE = (100, 30)


async def open_users(pilot) -> None:  # type: ignore[no-untyped-def]
    await pilot.press("f2")
    await until(pilot, lambda: screen_name(pilot) == "UsersScreen", "the users screen")


async def test_adjust_balance_writes_the_ledger_and_doctor_agrees(admin_env: AdminEnv) -> None:
    alice = create_user("alice@example.com")
    adjust_balance("alice@example.com", "5", "opening credit")
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await open_users(pilot)
        await until(pilot, lambda: column(pilot, "#users") == ["alice@example.com"], "alice")
        assert column(pilot, "#users", 1) == ["$5.00"]

        await open_form(pilot, "a", "the adjust form")
        await fill(pilot, "amount", "12.50")
        await fill(pilot, "reason", "goodwill for the outage")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: screen_name(pilot) == "ConfirmDialog", "the confirmation")
        assert "Add 12.50 USD to alice@example.com" in text_of(pilot, "#confirm-message")
        await pilot.press("y")
        await until(pilot, lambda: screen_name(pilot) == "UsersScreen", "the form to close")
        await until(pilot, lambda: column(pilot, "#users", 1) == ["$17.50"], "the new balance")

    entry = entries_for(alice.id)[0]
    assert (entry.amount_nanos, entry.kind, entry.reason) == (
        12_500_000_000,
        "admin",
        "goodwill for the outage",
    )
    assert get_user("alice@example.com").balance_nanos == 17_500_000_000
    assert Payment.select().where(Payment.user == alice.id, Payment.kind == "admin").count() == 2
    assert find_mismatches() == []
    doctor = run_cli(admin_env.path, "doctor")
    assert doctor.returncode == 0, doctor.stderr
    assert "every balance matches its ledger" in doctor.stdout


async def test_bad_adjustments_are_refused_in_the_form(admin_env: AdminEnv) -> None:
    alice = create_user("alice@example.com")
    adjust_balance("alice@example.com", "3", "opening credit")
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await open_users(pilot)
        await until(pilot, lambda: column(pilot, "#users") == ["alice@example.com"], "alice")
        await open_form(pilot, "a", "the adjust form")

        await fill(pilot, "amount", "ten dollars")
        await fill(pilot, "reason", "typo")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "USD amount" in text_of(pilot, "#form-error"), "the error")
        assert screen_name(pilot) == "FormDialog"

        await fill(pilot, "amount", "-4")  # more than the balance
        await pilot.press("ctrl+s")
        await until(pilot, lambda: screen_name(pilot) == "ConfirmDialog", "the confirmation")
        assert "Remove 4.00 USD from alice@example.com" in text_of(pilot, "#confirm-message")
        await pilot.press("y")
        await until(pilot, lambda: "below zero" in text_of(pilot, "#form-error"), "the refusal")

        await fill(pilot, "amount", "1")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: screen_name(pilot) == "ConfirmDialog", "the confirmation")
        await pilot.press("n")  # not confirmed: the form stays, nothing is written
        await until(pilot, lambda: screen_name(pilot) == "FormDialog", "back in the form")
        await pilot.press("escape")
        await until(pilot, lambda: screen_name(pilot) == "UsersScreen", "the form to close")

    assert [e.reason for e in entries_for(alice.id)] == ["opening credit"]
    assert get_user("alice@example.com").balance_nanos == 3_000_000_000


async def test_create_disable_and_enable_a_user(admin_env: AdminEnv) -> None:
    create_user("alice@example.com")
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await open_users(pilot)
        await until(pilot, lambda: column(pilot, "#users") == ["alice@example.com"], "alice")

        await open_form(pilot, "n", "the new user form")
        await fill(pilot, "email", "not-an-email")
        await pilot.press("enter")
        await until(pilot, lambda: "not a valid email" in text_of(pilot, "#form-error"), "error")
        await fill(pilot, "email", "Alice@Example.com")
        await pilot.press("enter")
        await until(pilot, lambda: "already exists" in text_of(pilot, "#form-error"), "dup")
        await fill(pilot, "email", "  Bob@Example.com ")
        await pilot.press("enter")
        await until(pilot, lambda: screen_name(pilot) == "UsersScreen", "the form to close")
        await until(pilot, lambda: "bob@example.com" in column(pilot, "#users"), "bob listed")
        assert "Created bob@example.com" in notifications(pilot)

        bob = find_user("bob@example.com")
        assert bob is not None and bob.created_by_admin and bob.status == "active"

        await pilot.press("slash")
        await pilot.press(*"bob")
        await until(pilot, lambda: column(pilot, "#users") == ["bob@example.com"], "the search")
        await pilot.press("enter")  # from the search box to the table
        await pilot.press("x")
        await until(pilot, lambda: screen_name(pilot) == "ConfirmDialog", "the confirmation")
        await pilot.press("y")
        await until(pilot, lambda: get_user("bob@example.com").status == "disabled", "disabled")
        await until(pilot, lambda: column(pilot, "#users", 4) == ["disabled"], "shown disabled")

        await pilot.press("x")  # enabling cuts nothing: no question asked
        await until(pilot, lambda: get_user("bob@example.com").status == "active", "enabled")
    assert get_user("alice@example.com").status == "active"


async def test_user_detail_shows_keys_ledger_payments_and_revokes_a_key(
    admin_env: AdminEnv,
) -> None:
    alice = create_user("alice@example.com")
    adjust_balance("alice@example.com", "20", "welcome credit")
    laptop = create_key(alice.id, "laptop").key
    phone = create_key(alice.id, "phone").key
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await open_users(pilot)
        await until(pilot, lambda: column(pilot, "#users") == ["alice@example.com"], "alice")
        await pilot.press("enter")
        await until(pilot, lambda: screen_name(pilot) == "UserDetailScreen", "the detail")
        await until(pilot, lambda: column(pilot, "#keys", 2) == ["laptop", "phone"], "keys")
        assert column(pilot, "#keys", 1) == [laptop.key_prefix + "…", phone.key_prefix + "…"]
        assert column(pilot, "#keys", 0) == [laptop.uuid[:8], phone.uuid[:8]]  # the public id
        assert "balance $20.00  held $0.00" in text_of(pilot, "#summary")
        assert column(pilot, "#ledger", 3) == ["welcome credit"]
        assert column(pilot, "#payments", 2) == ["admin"]

        await pilot.press("k")  # the cursor is on the first key: laptop
        await until(pilot, lambda: screen_name(pilot) == "ConfirmDialog", "the confirmation")
        assert "laptop" in text_of(pilot, "#confirm-message")
        await pilot.press("y")
        await until(pilot, lambda: column(pilot, "#keys", 2) == ["phone"], "laptop gone")
        await pilot.press("escape")
        await until(pilot, lambda: screen_name(pilot) == "UsersScreen", "back to the table")

    assert [k.name for k in list_keys(alice.id)] == ["phone"]
    assert ApiKey.get_by_id(laptop.id).revoked_at is not None
    assert LedgerEntry.select().count() == 1


async def test_an_international_domain_is_shown_in_unicode_and_acted_on_as_stored(
    admin_env: AdminEnv,
) -> None:
    """An address at bücher.de is kept as xn--bcher-kva.de (as mail servers take it), and the
    dashboard showed the operator that form in every table and question. Shown in Unicode
    now; what the dashboard does with the account still finds it."""
    zoe = create_user("Zoe@Bücher.de")
    add_usage(zoe.id, datetime(2026, 3, 1, 12, 0), request_id="z1")
    Payment.create(user=zoe.id, amount_nanos=10**9, kind="topup", status="pending")
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        services = app.services
        assert [r.email for r in await services.run(services.requests)] == ["zoe@bücher.de"]
        assert [p.email for p in await services.run(services.payments)] == ["zoe@bücher.de"]
        await open_users(pilot)
        await until(pilot, lambda: column(pilot, "#users") == ["zoe@bücher.de"], "zoe")
        await pilot.press("x")
        await until(pilot, lambda: screen_name(pilot) == "ConfirmDialog", "the confirmation")
        assert "Disable zoe@bücher.de?" in text_of(pilot, "#confirm-message")
        await pilot.press("y")
        await until(pilot, lambda: get_user(zoe.email).status == "disabled", "disabled")
        assert "zoe@bücher.de disabled" in notifications(pilot)
    assert zoe.email == "zoe@xn--bcher-kva.de"
