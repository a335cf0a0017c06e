"""A user's detail lists the newest 200 ledger entries, requests and payments: every request
writes a ledger entry, so an account with a day's use had its credits, top-ups and refunds past
the end of the Ledger tab, and nothing said that the tab was not the whole ledger (an operator
adding it up against the balance found them apart). A cut tab says so; a whole one says
nothing."""

from __future__ import annotations

import pytest

from admin_tui.app import create_admin_app
from admin_tui.services import LIST_LIMIT
from codelace_box.accounts.users import create_user
from codelace_box.billing.credits import adjust_balance
from codelace_box.billing.ledger import append_entry
from codelace_box.db.core import write_transaction
from tests.admin.pilot import AdminEnv, column, screen_name, text_of, until

pytestmark = pytest.mark.timeout(60)
SIZE = (100, 30)


async def test_a_cut_ledger_says_it_is_not_the_whole_ledger(admin_env: AdminEnv) -> None:
    alice = create_user("alice@example.com")
    adjust_balance("alice@example.com", "50", "opening credit")
    with write_transaction():
        for i in range(LIST_LIMIT):  # what 200 settled requests write
            append_entry(alice.id, -1000, "usage", f"m: 1 input + 1 output tokens (r{i})", f"u{i}")
    create_user("bob@example.com")
    adjust_balance("bob@example.com", "5", "opening credit")
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f2")
        await until(pilot, lambda: len(column(pilot, "#users")) == 2, "the users")
        await pilot.press("enter")
        await until(pilot, lambda: screen_name(pilot) == "UserDetailScreen", "alice's detail")
        await until(pilot, lambda: len(column(pilot, "#ledger")) == LIST_LIMIT, "the ledger")
        assert "opening credit" not in column(pilot, "#ledger", 3)  # past the end of the tab
        note = text_of(pilot, "#ledger-more")
        assert f"newest {LIST_LIMIT}" in note and "more" in note, note
        assert text_of(pilot, "#payments-more") == ""  # one payment: the whole list

        await pilot.press("escape", "down", "enter")
        await until(pilot, lambda: column(pilot, "#ledger", 3) == ["opening credit"], "bob's")
        assert text_of(pilot, "#ledger-more") == ""
