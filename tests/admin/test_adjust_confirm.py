"""The balance adjustment's confirmation states the amount that will move, exactly, not the
text as typed: '100.000' or ' -1000 ' are read as 100 and -1,000 USD, and the question says
so (exponents, '1e2', are refused as on the command line: test_bad_input.py)."""

from __future__ import annotations

import pytest

from admin_tui.app import create_admin_app
from codelace_box.accounts.users import create_user, get_user
from codelace_box.audit import list_entries
from codelace_box.billing.credits import adjust_balance
from tests.admin.pilot import AdminEnv, column, fill, open_form, screen_name, text_of, until

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize(
    ("typed", "asked", "nanos"),
    [("100.000", "Add 100.00 USD to", 100 * 10**9), (" -1000 ", "Remove 1000.00 USD from", 0)],
)
async def test_the_confirmation_names_the_exact_amount(
    admin_env: AdminEnv, typed: str, asked: str, nanos: int
) -> None:
    create_user("alice@example.com")
    if nanos == 0:  # a removal needs a balance to take from
        adjust_balance("alice@example.com", "2000", "opening credit")
    before = get_user("alice@example.com").balance_nanos
    async with create_admin_app(admin_env.config).run_test(size=(100, 30)) as pilot:
        await pilot.press("f2")
        await until(pilot, lambda: column(pilot, "#users") == ["alice@example.com"], "alice")
        await open_form(pilot, "a", "the adjust form")
        await fill(pilot, "amount", typed)
        await fill(pilot, "reason", "typed oddly")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: screen_name(pilot) == "ConfirmDialog", "the confirmation")
        assert f"{asked} alice@example.com?" in text_of(pilot, "#confirm-message")
        await pilot.press("n")
        await until(pilot, lambda: screen_name(pilot) == "FormDialog", "back to the form")
    assert get_user("alice@example.com").balance_nanos == before  # declined: nothing moved


async def test_the_audit_entry_names_the_amount_as_the_ledger_moved_it(admin_env: AdminEnv) -> None:
    """The dashboard's credit audited the amount as typed (`100.0`), where the CLI's names the
    USD moved in the balance's own text (`100`): one audit log, one way to read an amount."""
    create_user("alice@example.com")
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=(100, 30)):
        for typed in ("100.0", " -10.000 ", "2.50"):
            await app.services.run(app.services.adjust_balance, "alice@example.com", typed, "odd")
    amounts = [e.after["amount_usd"] for e in list_entries() if e.command == "credit"]
    assert sorted(amounts) == sorted(["100", "-10", "2.5"])
