"""Amounts the operator acts on are shown exactly, as the CLI prints them: a key's spend
against its cap (rounded to cents, $19.996 of a $20 cap read "$20.00 / $20.00", a cap that
looked reached, and a $0.005 cap read "$0.00"), and a balance in the users table."""

from __future__ import annotations

from datetime import timedelta

import pytest

from admin_tui.app import create_admin_app
from codelace_box.accounts.keys import create_key, update_key
from codelace_box.accounts.users import create_user
from codelace_box.billing.credits import adjust_balance
from codelace_box.db.core import utcnow
from codelace_box.db.models import ApiKey
from tests.admin.pilot import AdminEnv, column, until
from tests.admin.test_limits import open_detail

pytestmark = pytest.mark.timeout(60)
SIZE = (120, 34)


async def test_spend_cap_and_balance_are_shown_to_the_nano_dollar(admin_env: AdminEnv) -> None:
    alice = create_user("alice@example.com")
    adjust_balance("alice@example.com", "9.995", "test credit")
    near = create_key(alice.id, "near").key
    update_key(near.uuid, {"limit_usd": "20"})
    ApiKey.update(spent_nanos=19_996_000_000).where(ApiKey.id == near.id).execute()
    tiny = create_key(alice.id, "tiny").key
    update_key(tiny.uuid, {"limit_usd": "0.005"})
    ApiKey.update(spent_nanos=4_000_000).where(ApiKey.id == tiny.id).execute()
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f2")
        await until(pilot, lambda: column(pilot, "#users", 1) == ["$9.995"], "the exact balance")
        await pilot.press("escape")
        await open_detail(pilot, "alice@example.com")
        await until(pilot, lambda: len(column(pilot, "#keys")) == 2, "the keys")
        spends = dict(zip(column(pilot, "#keys", 2), column(pilot, "#keys", 3), strict=True))
    assert spends == {"near": "$19.996 / $20.00 total", "tiny": "$0.004 / $0.005 total"}


async def test_an_expired_key_says_so(admin_env: AdminEnv) -> None:
    """keys list and the API answer 401 key_expired for it; the keys table listed an expired key
    among the working ones with only a past date in its Expires column."""
    alice = create_user("alice@example.com")
    old = create_key(alice.id, "old").key
    ApiKey.update(expires_at=utcnow() - timedelta(days=2)).where(ApiKey.id == old.id).execute()
    create_key(alice.id, "new")
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=SIZE) as pilot:
        await open_detail(pilot, "alice@example.com")
        await until(pilot, lambda: len(column(pilot, "#keys")) == 2, "the keys")
        expires = dict(zip(column(pilot, "#keys", 2), column(pilot, "#keys", 4), strict=True))
    assert expires["old"].startswith("expired") and expires["new"] == "—", expires


async def test_an_expiry_is_shown_with_its_year(admin_env: AdminEnv) -> None:
    """A key made to expire a year from today read "12-07 00:00", as one expiring today."""
    alice = create_user("alice@example.com")
    today = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    later = today.replace(year=today.year + 1, day=min(today.day, 28))
    create_key(alice.id, "later", {"expires_at": later.isoformat() + "Z"})
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=SIZE) as pilot:
        await open_detail(pilot, "alice@example.com")
        await until(pilot, lambda: len(column(pilot, "#keys")) == 1, "the key")
        assert column(pilot, "#keys", 4) == [later.strftime("%Y-%m-%d %H:%M")]


async def test_a_sub_cent_admin_credit_is_shown_exactly_in_payments(admin_env: AdminEnv) -> None:
    """An admin credit of $0.005 read "$0.01" in the user's payments (rounded to cents, which
    Stripe's payments are in and admin credits need not be), beside a balance shown exactly."""
    create_user("alice@example.com")
    adjust_balance("alice@example.com", "0.005", "test credit")
    adjust_balance("alice@example.com", "12.5", "test credit")
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=SIZE) as pilot:
        await open_detail(pilot, "alice@example.com")
        await pilot.press("p")
        await until(pilot, lambda: len(column(pilot, "#payments")) == 2, "the payments")
        amounts = sorted(column(pilot, "#payments", 1))
    assert amounts == ["$0.005", "$12.50"], amounts
