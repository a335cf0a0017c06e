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

from admin_tui.app import create_admin_app
from codelace_box.accounts.users import find_user
from tests.admin.pilot import (
    AdminEnv,
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
