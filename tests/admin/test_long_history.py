"""A box with a long usage history: a screen whose read takes longer than its refresh interval
still shows its figures (a refresh never throws away the read in flight), and the database
thread is not kept busy by refreshes alone."""

from __future__ import annotations

import time
from itertools import pairwise
from pathlib import Path

import pytest

from admin_tui.app import create_admin_app
from admin_tui.screens.spend import SpendScreen
from admin_tui.services import SpendRow
from bench.history import generate
from codelace_box.accounts.keys import create_key
from codelace_box.accounts.users import create_user
from codelace_box.db.core import close_database
from tests.admin.pilot import AdminEnv, column, screen_name, until
from tests.pg_cluster import wanted_engine

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(
        wanted_engine() != "sqlite", reason="bench.history generates its rows on SQLite"
    ),
]
SIZE = (120, 32)
ROWS = 150_000  # spread over the last 30 days, across 1,000 accounts


class EagerSpend(SpendScreen):
    """The spend report refreshing far more often than one read of this history takes (as the
    real one, every 10 s, against a history ten times as long as this)."""

    REFRESH_SECONDS = 0.05

    def __init__(self) -> None:
        super().__init__()
        self.window = "all"
        self.spans: list[tuple[float, float]] = []  # when each read began and ended

    async def fetch(self) -> list[SpendRow]:
        began = time.monotonic()
        try:
            return await super().fetch()
        finally:
            self.spans.append((began, time.monotonic()))


def seed_history(env: AdminEnv) -> None:
    """ROWS usage rows, totals and rollups, made by the history bench's own generator."""
    owner = create_user("big@example.com")
    create_key(owner.id, "bench")
    close_database()
    generate(Path(env.config.database.path), ROWS)


async def test_a_read_slower_than_the_refresh_still_shows(admin_env: AdminEnv) -> None:
    seed_history(admin_env)
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=SIZE) as pilot:
        screen = EagerSpend()
        await app.push_screen(screen)
        await until(pilot, lambda: screen_name(pilot) == "EagerSpend", "the spend report")
        began = time.monotonic()
        await until(pilot, lambda: len(column(pilot, "#spend")) == 1_000, "1,000 accounts", 20)
        assert "big@example.com" in column(pilot, "#spend")
        assert time.monotonic() - began < 20


async def test_refreshes_alone_leave_the_database_thread_mostly_idle(admin_env: AdminEnv) -> None:
    seed_history(admin_env)
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=SIZE) as pilot:
        screen = EagerSpend()
        await app.push_screen(screen)
        await until(pilot, lambda: len(column(pilot, "#spend")) == 1_000, "1,000 accounts", 20)
        done = len(screen.spans)
        await until(pilot, lambda: len(screen.spans) >= done + 2, "two more refreshes", 60)
        # Each refresh waits as long again as the read before it, and more: the database
        # thread is idle at least half the time, however slow a read is on a busy machine.
        for (began, ended), (next_began, _) in pairwise(screen.spans[done - 1 :]):
            took = ended - began
            assert next_began - ended >= took, f"a {took:.2f} s read, then {screen.spans}"
