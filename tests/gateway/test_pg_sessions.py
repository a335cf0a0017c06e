"""A box on PostgreSQL outlives its database sessions: when the server drops them (a restart, a
failover, a proxy's idle cut: here `pg_terminate_backend`), what failed with them is a 503, and
the box opens new sessions and serves again, with no restart."""

from __future__ import annotations

import time

import httpx
import psycopg
import pytest

from tests.gateway.conftest import MODEL, Box

pytestmark = pytest.mark.timeout(90)
BODY = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}


def _drop_the_boxs_sessions(url: str) -> int:
    """End every other session of the database (the box's); how many."""
    with psycopg.connect(url, autocommit=True) as admin:
        ended = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return len(ended)


def _served_again(ask: object, what: str) -> list[int]:
    """The statuses of `ask()` until it is a 200 (within 10 s), each failure a 503."""
    seen: list[int] = []
    deadline = time.monotonic() + 10
    while not seen or seen[-1] != 200:
        assert time.monotonic() < deadline, f"{what} never served again: {seen}"
        seen.append(ask().status_code)  # type: ignore[operator]
        time.sleep(0.05)
    assert set(seen[:-1]) <= {503}, f"{what}: {seen}"
    return seen


def test_a_box_opens_new_sessions_after_the_server_dropped_them(pg_box: Box, pg_url: str) -> None:
    email, key = pg_box.new_user("10")
    headers = {"authorization": f"Bearer {key}"}

    def chat() -> httpx.Response:
        url = f"{pg_box.url}/v1/chat/completions"
        return httpx.post(url, json=BODY, headers=headers, timeout=30)

    def usage() -> httpx.Response:
        return httpx.get(f"{pg_box.url}/api/v1/customer/usage", headers=headers, timeout=30)

    def health() -> httpx.Response:
        return httpx.get(f"{pg_box.url}/healthz", timeout=30)

    assert chat().status_code == usage().status_code == health().status_code == 200
    for _ in range(2):  # and again, with the sessions opened after the first time
        assert _drop_the_boxs_sessions(pg_url) >= 3
        _served_again(health, "/healthz")
        _served_again(chat, "chat")
        _served_again(usage, "usage")
    assert "Traceback" not in pg_box.server.log_text()
    pg_box.cli("doctor")
    balance, held = pg_box.balance(email)
    assert held == 0 and balance < 10 * 1_000_000_000
