"""A database another process holds a write transaction on (a sqlite3 shell left in BEGIN, a
long backup restore): a save in the dashboard waits the busy timeout, then says the database
is locked and nothing was done, as the CLI does, not 'unexpected BusyError' like a bug's; the
form stays open and the same save works once the lock is gone."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from textual.command import CommandPalette

from admin_tui.app import create_admin_app
from codelace_box.accounts.users import create_user, find_user
from codelace_box.billing.ledger import entries_for
from tests.admin.pilot import (
    AdminEnv,
    column,
    fill,
    open_form,
    screen_name,
    sqlite_file_only,
    text_of,
    until,
)

pytestmark = [pytest.mark.timeout(90), sqlite_file_only]
HOLD = (
    "import sqlite3, sys; c = sqlite3.connect(sys.argv[1], isolation_level=None); "
    "c.execute('BEGIN IMMEDIATE'); print('locked', flush=True); sys.stdin.read()"
)


@contextmanager
def write_lock_held(path: str) -> Iterator[None]:
    """Another process holds a write transaction on the file until the block ends."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, path], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"locked"
        yield
    finally:
        assert holder.stdin is not None
        holder.stdin.close()  # the holder ends, its transaction with it
        holder.wait(10)


async def test_a_save_on_a_locked_database_says_so_and_works_after(admin_env: AdminEnv) -> None:
    async with create_admin_app(admin_env.config).run_test(size=(100, 30)) as pilot:
        await pilot.press("f2")
        await until(pilot, lambda: screen_name(pilot) == "UsersScreen", "the users screen")
        await open_form(pilot, "n", "the new user form")
        await fill(pilot, "email", "ana@example.com")
        with write_lock_held(admin_env.config.database.path):
            await pilot.press("ctrl+s")
            await until(pilot, lambda: text_of(pilot, "#form-error"), "the refusal", timeout=40)
        said = text_of(pilot, "#form-error")
        assert "locked by another process" in said and "nothing was done" in said, said
        assert "unexpected" not in said
        assert find_user("ana@example.com") is None

        await pilot.press("ctrl+s")
        await until(pilot, lambda: screen_name(pilot) == "UsersScreen", "the form closed")
    assert find_user("ana@example.com") is not None


async def test_a_save_ending_under_the_command_palette_closes_its_form(
    admin_env: AdminEnv,
) -> None:
    """A credit waiting for the database that was made while the operator had the command
    palette open closed the palette instead of the form: the adjust form stayed up as if
    nothing was saved (a second ctrl+s credits twice), and Escape on it ended the dashboard
    with an InvalidStateError. The form now closes once it is on top again."""
    alice = create_user("alice@example.com")
    async with create_admin_app(admin_env.config).run_test(size=(100, 30)) as pilot:
        await pilot.press("f2")
        await until(pilot, lambda: column(pilot, "#users") == ["alice@example.com"], "alice")
        await open_form(pilot, "a", "the adjust form")
        await fill(pilot, "amount", "5")
        await fill(pilot, "reason", "goodwill")
        with write_lock_held(admin_env.config.database.path):
            await pilot.press("ctrl+s")
            await until(pilot, lambda: screen_name(pilot) == "ConfirmDialog", "the question")
            await pilot.press("y")
            await until(pilot, lambda: screen_name(pilot) == "FormDialog", "the save waiting")
            await pilot.press("ctrl+p")
            await until(pilot, lambda: isinstance(pilot.app.screen, CommandPalette), "the palette")
        await until(pilot, lambda: len(entries_for(alice.id)) == 1, "the credit")
        await pilot.pause(0.3)
        assert isinstance(pilot.app.screen, CommandPalette)  # left as the operator opened it
        await pilot.press("escape")
        await until(pilot, lambda: screen_name(pilot) == "UsersScreen", "the form closed")
    assert [e.amount_nanos for e in entries_for(alice.id)] == [5_000_000_000]


async def test_a_save_ending_on_another_screen_closes_its_form_when_back(
    admin_env: AdminEnv,
) -> None:
    """A new account waiting for the database, made after the operator went to another screen
    through the palette (Go to Models): closing its form popped that screen's last one, and
    the dashboard ended with a ScreenStackError. The form now closes when its screen is back."""
    async with create_admin_app(admin_env.config).run_test(size=(100, 30)) as pilot:
        await pilot.press("f2")
        await open_form(pilot, "n", "the new user form")
        await fill(pilot, "email", "ana@example.com")
        with write_lock_held(admin_env.config.database.path):
            await pilot.press("ctrl+s", "ctrl+p")
            await until(pilot, lambda: isinstance(pilot.app.screen, CommandPalette), "the palette")
            await pilot.press(*"models", "enter")  # the first match: Go to Models
            await until(pilot, lambda: screen_name(pilot) == "ModelsScreen", "the models")
        await until(pilot, lambda: find_user("ana@example.com") is not None, "the account")
        await pilot.pause(0.3)
        assert screen_name(pilot) == "ModelsScreen"
        await pilot.press("f2")
        await until(pilot, lambda: screen_name(pilot) == "UsersScreen", "the form closed")


async def test_a_save_ending_under_the_palette_then_going_elsewhere_closes_its_form(
    admin_env: AdminEnv,
) -> None:
    """A new account made while the palette was open over its form, the operator then going
    to another screen from that palette (Go to Models): the form closes in its own screen's
    stack, never popping the screen gone to."""
    async with create_admin_app(admin_env.config).run_test(size=(100, 30)) as pilot:
        await pilot.press("f2")
        await open_form(pilot, "n", "the new user form")
        await fill(pilot, "email", "ana@example.com")
        with write_lock_held(admin_env.config.database.path):
            await pilot.press("ctrl+s", "ctrl+p")
            await until(pilot, lambda: isinstance(pilot.app.screen, CommandPalette), "the palette")
        await until(pilot, lambda: find_user("ana@example.com") is not None, "the account")
        await pilot.pause(0.3)
        await pilot.press(*"models", "enter")  # the first match: Go to Models
        await until(pilot, lambda: screen_name(pilot) == "ModelsScreen", "the models")
        await pilot.pause(0.3)
        assert screen_name(pilot) == "ModelsScreen"
        await pilot.press("f2")
        await until(pilot, lambda: screen_name(pilot) == "UsersScreen", "the form closed")
