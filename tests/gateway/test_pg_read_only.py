"""A box on a PostgreSQL database that takes no writes (a hot standby that database.url still
names after a failover; `default_transaction_read_only`, a managed service's answer to a full
disk): every write is a 503 `database_unavailable` in its route's envelope, as a SQLite file
that cannot be written is, never a 500 with a traceback; reads still answer, and once the
database takes writes again the box serves them, with no restart."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest

from tests.gateway.conftest import MODEL, Box
from tests.support import TLS, run_cli

pytestmark = pytest.mark.timeout(90)
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}


def _read_only(url: str, on: bool) -> None:
    """Make the box's database read-only (or not) for new sessions, and end the box's own."""
    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(url.replace(f"/{name}", "/postgres"), autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = {on}')
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
    time.sleep(0.3)  # the box sees its sessions ended: its next calls open read-only ones


def test_a_database_that_takes_no_writes_is_a_503_not_a_500(pg_box: Box, pg_url: str) -> None:
    email, key = pg_box.new_user("10")
    bearer = {"authorization": f"Bearer {key}"}
    asks = {
        "chat": ("/v1/chat/completions", CHAT, bearer),
        "stream": ("/v1/chat/completions", {**CHAT, "stream": True}, bearer),
        "messages": ("/v1/messages", CHAT, {"x-api-key": key}),
        "key": ("/api/v1/auth/key", {"name": "made read-only"}, bearer),
    }
    _read_only(pg_url, True)
    try:
        answers = {
            name: httpx.post(pg_box.url + path, json=body, headers=headers, timeout=30, verify=TLS)
            for name, (path, body, headers) in asks.items()
        }
        balance = httpx.get(
            f"{pg_box.url}/api/v1/customer/balance", headers=bearer, timeout=30, verify=TLS
        )
        credit = run_cli(pg_box.config, "credit", email, "1", "--reason", "read-only")
    finally:
        _read_only(pg_url, False)
    assert {name: a.status_code for name, a in answers.items()} == dict.fromkeys(asks, 503)
    assert answers["chat"].json()["error"]["code"] == "database_unavailable"
    assert answers["messages"].json()["type"] == "error"  # Anthropic's shape
    assert balance.status_code == 200  # reads answer meanwhile
    assert credit.returncode == 1
    assert "could not be written: cannot execute" in credit.stderr, credit.stderr
    assert "read-only transaction" in credit.stderr and "unexpected" not in credit.stderr
    log = pg_box.server.log_text()
    assert "unhandled error" not in log and "Traceback" not in log, log[-3000:]
    deadline = time.monotonic() + 10
    while (served := httpx.post(
        f"{pg_box.url}/v1/chat/completions", json=CHAT, headers=bearer, timeout=30, verify=TLS
    )).status_code != 200:  # fmt: skip
        assert served.status_code == 503 and time.monotonic() < deadline, served.text
