"""Out-of-range input typed into the dashboard's forms: an amount, a price or a token cap too
large for exact money or for SQLite's integers is refused in the form with a clear message,
writes nothing, and never takes the whole dashboard down."""

from __future__ import annotations

import asyncio

import pytest
from textual.pilot import Pilot

from admin_tui.app import AdminApp, create_admin_app
from admin_tui.dialogs.form import FormDialog, FormField
from codelace_box.accounts.users import create_user, get_user
from codelace_box.billing.ledger import entries_for
from codelace_box.catalog.providers import add_provider, get_provider, provider_keys
from codelace_box.db.models import CatalogModel
from tests.admin.pilot import SECRET, AdminEnv, column, fill, open_form, screen_name, text_of, until

pytestmark = pytest.mark.timeout(60)
SIZE = (80, 24)


async def submit_and_read_error(pilot: Pilot[None]) -> str:
    """Save the form on top and wait for its inline error."""
    await pilot.press("ctrl+s")
    await until(pilot, lambda: text_of(pilot, "#form-error") != "", "the form's error")
    assert screen_name(pilot) == "FormDialog"
    return text_of(pilot, "#form-error")


async def test_an_amount_beyond_decimal_range_is_refused_not_a_crash(admin_env: AdminEnv) -> None:
    alice = create_user("alice@example.com")
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f2")
        await until(pilot, lambda: column(pilot, "#users") == ["alice@example.com"], "alice")
        await open_form(pilot, "a", "the adjust form")
        await fill(pilot, "amount", "1" + "0" * 1200)  # past Decimal's range
        await fill(pilot, "reason", "typo")
        assert "1,000,000 USD" in await submit_and_read_error(pilot)
        await pilot.press("escape")
        await until(pilot, lambda: screen_name(pilot) == "UsersScreen", "the users table")
    assert app.return_code in (0, None)
    assert get_user("alice@example.com").balance_nanos == 0
    assert entries_for(alice.id) == []


@pytest.mark.parametrize("typed", ["1e2", "0.1e-8", "1E1"])
async def test_an_amount_with_an_exponent_is_refused_as_on_the_command_line(
    admin_env: AdminEnv, typed: str
) -> None:
    """`credit EMAIL 1e2` is refused (plain decimals only: it was 100 USD); the dashboard's
    adjustment took `1e2` as 100 USD and `0.1e-8` as a nano-dollar, and its prices too."""
    alice = create_user("alice@example.com")
    add_provider("openai", "openai", SECRET, "sk-admin-test-0000000000001")
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f2")
        await until(pilot, lambda: column(pilot, "#users") == ["alice@example.com"], "alice")
        await open_form(pilot, "a", "the adjust form")
        await fill(pilot, "amount", typed)
        await fill(pilot, "reason", "typo")
        assert "plain decimals" in await submit_and_read_error(pilot)
        await pilot.press("escape")
        await open_add_model(app, pilot)
        await fill(pilot, "input_per_1m", typed)
        assert "plain decimals" in await submit_and_read_error(pilot)
        await pilot.press("escape")
        await until(pilot, lambda: screen_name(pilot) == "ModelsScreen", "the models table")
    assert entries_for(alice.id) == [] and CatalogModel.select().count() == 0


async def open_add_model(app: AdminApp, pilot: Pilot[None]) -> None:
    await pilot.press("f3")
    await until(pilot, lambda: screen_name(pilot) == "ModelsScreen", "the models screen")
    await open_form(pilot, "n", "the add form")
    await fill(pilot, "model_id", "openai/gpt-x")
    await fill(pilot, "input_per_1m", "1")
    await fill(pilot, "output_per_1m", "2")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("input_per_1m", "1e999999999", "input price"),
        ("output_per_1m", "-1e999999", "output price"),
        ("max_output_tokens", "99999999999999999999999", "max output tokens"),
        ("max_output_tokens", "\u00b2", "max output tokens must be a whole number"),  # int() fails
        ("max_output_tokens", "\u0663", "max output tokens must be a whole number"),  # int() = 3
        pytest.param(  # more digits than int() reads
            "max_output_tokens", "9" * 4301, "max output tokens must be at most", id="cap-4301"
        ),
        pytest.param("context_tokens", "9" * 4301, "context tokens must be at most", id="ctx-4301"),
    ],
)
async def test_an_out_of_range_model_field_is_refused_not_a_crash(
    admin_env: AdminEnv, field: str, value: str, message: str
) -> None:
    add_provider("openai", "openai", SECRET, "sk-admin-test-0000000000001")
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=SIZE) as pilot:
        await open_add_model(app, pilot)
        await fill(pilot, field, value)
        assert message in await submit_and_read_error(pilot)
        await pilot.press("escape")
        await until(pilot, lambda: screen_name(pilot) == "ModelsScreen", "the models table")
    assert app.return_code in (0, None)
    assert CatalogModel.select().count() == 0


async def test_an_unexpected_failure_stays_in_the_form(admin_env: AdminEnv) -> None:
    """A failure no feature function foresaw (a full disk, a bug) is shown in the form; the
    dashboard stays up and the operator can cancel."""

    async def submit(values: dict[str, str]) -> str:
        raise OSError("database or disk is full")

    app = create_admin_app(admin_env.config)
    async with app.run_test(size=SIZE) as pilot:
        app.push_screen(FormDialog("Try", [FormField("name", "Name")], submit))
        await until(pilot, lambda: bool(app.screen.query("#form-error")), "the form")
        error = await submit_and_read_error(pilot)
        assert "OSError" in error and "disk is full" in error
        await pilot.press("escape")
        await until(pilot, lambda: screen_name(pilot) == "DashboardScreen", "the dashboard")
    assert app.return_code in (0, None)


@pytest.mark.parametrize(
    ("amount", "reason", "message"),
    [
        ("5", "", "a ledger entry needs a reason"),
        ("5", "   ", "a ledger entry needs a reason"),
        ("0", "nothing", "non-zero"),
        ("1" + "0" * 400, "typo", "1,000,000 USD"),
        ("ten", "typo", "USD amount"),
    ],
)
async def test_an_adjustment_that_cannot_be_done_is_refused_before_any_confirmation(
    admin_env: AdminEnv, amount: str, reason: str, message: str
) -> None:
    """The operator is asked to confirm only what can actually be done."""
    alice = create_user("alice@example.com")
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f2")
        await until(pilot, lambda: column(pilot, "#users") == ["alice@example.com"], "alice")
        await open_form(pilot, "a", "the adjust form")
        await fill(pilot, "amount", amount)
        await fill(pilot, "reason", reason)
        assert message in await submit_and_read_error(pilot)
    assert entries_for(alice.id) == []


async def test_rotating_to_an_empty_key_is_refused_before_any_confirmation(
    admin_env: AdminEnv,
) -> None:
    add_provider("openai", "openai", SECRET, "sk-admin-test-0000000000001")
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f4")
        await until(pilot, lambda: column(pilot, "#keys") != [], "the key")
        await pilot.press("tab", "o")
        await until(pilot, lambda: screen_name(pilot) == "FormDialog", "the rotate form")
        await fill(pilot, "key", "   ")
        assert "must not be empty" in await submit_and_read_error(pilot)
        await fill(pilot, "key", "sk-admin-test-0000000000002")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: screen_name(pilot) == "ConfirmDialog", "the confirmation")
        await pilot.press("escape")  # not confirmed: the form stays, nothing changes
        await until(pilot, lambda: screen_name(pilot) == "FormDialog", "back to the form")
    keys = provider_keys(get_provider("openai").id)
    assert [(k.key_hint, bool(k.enabled)) for k in keys] == [("sk-…0001", True)]


async def test_a_second_save_while_the_first_is_running_does_nothing(admin_env: AdminEnv) -> None:
    """ctrl+s pressed again while a slow save (the database busy with serve) is running must
    not start a second one: the first cannot be undone, so a repeat would add twice."""
    calls: list[str] = []

    async def submit(values: dict[str, str]) -> str:
        calls.append(values["name"])
        await asyncio.sleep(0.5)  # a write waiting for serve's lock
        return values["name"]

    app = create_admin_app(admin_env.config)
    results: list[str | None] = []
    async with app.run_test(size=SIZE) as pilot:
        app.push_screen(FormDialog("Try", [FormField("name", "Name")], submit), results.append)
        await until(pilot, lambda: bool(app.screen.query("#field-name")), "the form")
        await fill(pilot, "name", "once")
        await pilot.press("ctrl+s")
        await pilot.pause(0.1)
        await pilot.press("ctrl+s")
        await pilot.press("enter")
        await until(pilot, lambda: results != [], "the form to close")
    assert calls == ["once"]
    assert results == ["once"]


async def test_escape_while_a_save_is_running_waits_for_its_outcome(admin_env: AdminEnv) -> None:
    """Closing the form mid-save would hide that the change was made after all."""

    saving, saved = asyncio.Event(), asyncio.Event()

    async def submit(values: dict[str, str]) -> str:
        saving.set()
        await saved.wait()  # (the save runs until the test has pressed escape: no race)
        return values["name"]

    app = create_admin_app(admin_env.config)
    results: list[str | None] = []
    async with app.run_test(size=SIZE) as pilot:
        app.push_screen(FormDialog("Try", [FormField("name", "Name")], submit), results.append)
        await until(pilot, lambda: bool(app.screen.query("#field-name")), "the form")
        await fill(pilot, "name", "done")
        await pilot.press("ctrl+s")
        await until(pilot, saving.is_set, "the save to start")
        await pilot.press("escape")
        await until(pilot, lambda: "wait for the outcome" in text_of(pilot, "#form-error"), "it")
        assert results == []  # (still open: the save has not answered)
        saved.set()
        await until(pilot, lambda: results != [], "the form to close")
    assert results == ["done"]


@pytest.mark.parametrize(
    "typed", ["\u00b2", "\u0663", "\uff15", "1" * 4301]
)  # superscript 2, Arabic 3, fullwidth 5, more digits than int() reads
async def test_request_limits_are_ascii_digits_only(admin_env: AdminEnv, typed: str) -> None:
    """A digit int() cannot read ("²"), or more than 4300 digits, was an unexpected
    ValueError; one it reads ("٣") was taken as a limit: all are refused in the form, as
    every other number field is."""
    create_user("alice@example.com")
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f2")
        await until(pilot, lambda: column(pilot, "#users") == ["alice@example.com"], "alice")
        await open_form(pilot, "r", "the limits form")
        await fill(pilot, "rpm", typed)
        assert "rpm: must be a whole number" in await submit_and_read_error(pilot)
    assert get_user("alice@example.com").rpm is None
