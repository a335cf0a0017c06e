"""A dashboard search box searches once typing pauses, not on each keystroke: every search
waits its turn on the dashboard's one database thread (a term matching nothing scans the whole
history), and actions queued behind a search per keystroke."""

from __future__ import annotations

from typing import Any

import apsw
import pytest

from admin_tui.app import create_admin_app
from codelace_box.accounts.users import create_user
from codelace_box.db.core import connection
from tests.admin.pilot import AdminEnv, column, until
from tests.admin.test_users import open_users
from tests.pg_cluster import wanted_engine

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(wanted_engine() != "sqlite", reason="counts statements on SQLite"),
]
SIZE = (120, 34)
TERM = "nobodyxqzjk"  # matches no account; a prefix of it ("n", "no", ...) might


def trace_searches(searched: list[str]) -> None:
    """On the dashboard's database thread: note each term an account search asks for."""

    def trace(_cursor: Any, sql: str, bindings: Any) -> bool:
        terms = [b for b in bindings or () if isinstance(b, str) and b.startswith("%")]
        if "like" in sql.lower() and terms:
            searched.append(terms[0].strip("%"))  # one statement, one search
        return True

    conn = connection()
    assert isinstance(conn, apsw.Connection)
    conn.exec_trace = trace


async def test_typing_a_term_runs_one_search_not_one_per_keystroke(admin_env: AdminEnv) -> None:
    create_user("alice@example.com")
    app = create_admin_app(admin_env.config)
    searched: list[str] = []
    async with app.run_test(size=SIZE) as pilot:
        await open_users(pilot)
        await until(pilot, lambda: column(pilot, "#users") == ["alice@example.com"], "alice")
        await app.services.run(trace_searches, searched)
        await pilot.press("slash", *TERM)
        await until(pilot, lambda: column(pilot, "#users") == [], "the search for the term")
        await until(pilot, lambda: TERM in searched, "the search noted")
    # one search per pause in typing: one, or a few should the machine stall between keys
    # (each keystroke searched: as many as the term has characters); a loaded machine may
    # stall now and then, never between most of the keys
    assert len(searched) <= len(TERM) // 2, searched
    assert searched[-1] == TERM
