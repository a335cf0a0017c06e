"""A box on PostgreSQL outlives its database sessions: when the server drops them (a restart, a
failover, a proxy's idle cut: here `pg_terminate_backend`), what failed with them is a 503, and
the box opens new sessions and serves again, with no restart."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from codelace_box.db.postgres import OWNER_LOCK_CLASS
from tests.fakes.openai_upstream import Reply
from tests.gateway.conftest import MODEL, Box
from tests.pg_cluster import SHARED_SECRET
from tests.support import TLS, ServerProcess, free_port, write_config

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
        return httpx.post(url, json=BODY, headers=headers, timeout=30, verify=TLS)

    def usage() -> httpx.Response:
        return httpx.get(
            f"{pg_box.url}/api/v1/customer/usage", headers=headers, timeout=30, verify=TLS
        )

    def health() -> httpx.Response:
        return httpx.get(f"{pg_box.url}/healthz", timeout=30, verify=TLS)

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


def _owner_sessions_dropped(url: str, owner: str) -> int:
    """End the sessions of one box (those holding its owner lock, OWNER_LOCK_CLASS); how many."""
    with psycopg.connect(url, autocommit=True) as admin:
        ended = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
            "AND classid = %s::bigint::oid AND objsubid = 2 "
            "AND objid = (hashtext(%s)::bigint & 4294967295)::oid AND granted",
            (OWNER_LOCK_CLASS, owner),
        ).fetchall()
    return len(ended)


def _wait_for(what: str, check: Callable[[], bool], wait: float = 10) -> None:
    deadline = time.monotonic() + wait
    while not check():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.02)


def _another_box(pg_url: str, folder: Path, env: dict[str, str] | None = None) -> ServerProcess:
    """A second box on the same database (not started)."""
    folder.mkdir()
    port = free_port()
    sections: dict[str, dict[str, Any]] = {
        "server": {"host": "127.0.0.1", "port": port, "secret_key": SHARED_SECRET},
        "database": {"path": str(folder / "data" / "codelace.db"), "url": pg_url},
    }
    return ServerProcess(write_config(folder / "codelace.toml", sections), port, env=env)


class _CallInFlight:
    """A user's call held `delay` seconds at the fake upstream, asked on a thread, whose box's
    sessions (those claiming its hold's owner) are then dropped."""

    def __init__(self, box: Box, pg_url: str, delay: float) -> None:
        self.box = box
        self.email, key = box.new_user("10")
        self.before, _ = box.balance(self.email)
        box.fake.push(Reply(delay_before=delay))
        self.answers: list[httpx.Response] = []
        url, headers = f"{box.url}/v1/chat/completions", {"authorization": f"Bearer {key}"}
        self.asking = threading.Thread(
            target=lambda: self.answers.append(
                httpx.post(url, json=BODY, headers=headers, timeout=30, verify=TLS)
            )
        )
        self.asking.start()
        _wait_for("the request's hold", lambda: box.query("SELECT owner FROM hold") != [])
        [(owner,)] = box.query("SELECT owner FROM hold")
        assert _owner_sessions_dropped(pg_url, owner) >= 1

    def check_charged_as_answered(self) -> None:
        """Answered: charged what it cost; or refused with nothing charged. No hold left."""
        self.asking.join(30)
        [answer] = self.answers
        balance, held = self.box.balance(self.email)
        assert held == 0
        if answer.status_code == 200:
            charged = round(float(answer.headers["x-codelace-cost-usd"]) * 1e9)
            assert charged > 0 and self.before - balance == charged, (balance, charged)
        else:
            assert answer.status_code == 503 and balance == self.before
        self.box.cli("doctor")


def test_a_box_whose_sessions_dropped_mid_request_keeps_its_holds_from_the_others_sweep(
    pg_box: Box, pg_url: str, tmp_path: Path
) -> None:
    """Another box's sweep must not take a box whose sessions were dropped (it is alive, its
    requests in flight): their holds stay until they settle, and what they answer is charged."""
    sweeps = {"CODELACE_HOLD_SWEEP_SEC": "0.2"}  # both boxes, as they share it in production
    pg_box.server.stop()
    pg_box.server = ServerProcess(pg_box.config, pg_box.server.port, env=sweeps).start()
    sweeper = _another_box(pg_url, tmp_path / "sweeper", sweeps).start()
    try:
        call = _CallInFlight(pg_box, pg_url, delay=3)
        time.sleep(1)  # five sweeps of the other box
        call.check_charged_as_answered()
    finally:
        sweeper.stop()


def test_a_key_lookup_outlives_a_dropped_session(pg_box: Box, pg_url: str) -> None:
    """The lookup thread runs a batch again once when its session was dropped (lookups are
    reads): a route that needs only the key's lookup (count_tokens, estimated for this model)
    is answered at its first try after the drop."""
    _, key = pg_box.new_user("10")
    url = f"{pg_box.url}/v1/messages/count_tokens"
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}

    def count() -> int:
        return httpx.post(
            url, json=body, headers={"x-api-key": key}, timeout=30, verify=TLS
        ).status_code

    assert count() == 200
    for _ in range(2):
        assert _drop_the_boxs_sessions(pg_url) >= 1
        assert count() == 200


def test_a_box_that_starts_while_anothers_sessions_are_dropped_keeps_its_holds(
    pg_box: Box, pg_url: str, tmp_path: Path
) -> None:
    """A box starting (its release of holds left by a crash) while another box's sessions were
    just dropped must not take that box for dead either: its request in flight stays held and
    is charged what it cost."""
    starter = _another_box(pg_url, tmp_path / "starter")
    call = _CallInFlight(pg_box, pg_url, delay=6)
    starter.start()
    try:
        call.check_charged_as_answered()
    finally:
        starter.stop()


def test_refusals_counted_across_a_dropped_session_are_written_without_a_traceback(
    pg_box: Box, pg_url: str
) -> None:
    """The refusal counts a worker writes every few seconds meet a dropped session as any
    write does: kept, written at the next tick, and the log says so in one line (a failover
    is an operator's routine, not a bug's stack trace)."""
    _, key = pg_box.new_user("10")
    headers = {"authorization": f"Bearer {key}"}
    body = {**BODY, "model": "fake/no-such-model"}
    answer = httpx.post(f"{pg_box.url}/v1/chat/completions", json=body, headers=headers, verify=TLS)
    assert answer.status_code == 404
    assert _drop_the_boxs_sessions(pg_url) >= 1
    deadline = time.monotonic() + 20
    while not pg_box.query("SELECT count FROM refusal_count WHERE code = 'model_not_found'"):
        assert time.monotonic() < deadline, "the refusal was never written"
        time.sleep(0.2)
    log = pg_box.server.log_text()
    assert "writing the refusal counts failed" in log  # the drop met the write
    assert "Traceback" not in log, log[-3000:]


def test_a_chat_after_an_idle_cut_is_served(pg_box: Box, pg_url: str) -> None:
    """Sessions dropped while the box was idle (a proxy's idle cut, a restart between two
    requests): the next call is served, not a 503. Its admission was the write thread's one
    write on the dropped session, failed before any COMMIT: nothing of it was written, so it
    runs once more on a new session (a quiet box's every first call after a cut was a 503)."""
    email, key = pg_box.new_user("10")
    headers = {"authorization": f"Bearer {key}"}
    url = f"{pg_box.url}/v1/chat/completions"
    for _ in range(3):
        assert httpx.post(url, json=BODY, headers=headers, verify=TLS).status_code == 200
        assert _drop_the_boxs_sessions(pg_url) >= 1  # the write thread's among them
        time.sleep(0.3)  # idle: nothing of the box used its sessions meanwhile
        answer = httpx.post(url, json=BODY, headers=headers, timeout=30, verify=TLS)
        assert answer.status_code == 200, answer.text
    pg_box.cli("doctor")
    assert pg_box.balance(email)[1] == 0


def test_reads_after_an_idle_cut_are_served(pg_box: Box, pg_url: str) -> None:
    """A read of the account's own (a GET: its profile, balance, keys) after an idle cut is
    served: it runs once more on a new session when it met the dropped one (a read may)."""
    _, key = pg_box.new_user("10")
    headers = {"authorization": f"Bearer {key}"}
    for path in ("/api/v1/auth/me", "/api/v1/customer/balance", "/api/v1/auth/key"):
        url = f"{pg_box.url}{path}"
        assert httpx.get(url, headers=headers, timeout=30, verify=TLS).status_code == 200
        assert _drop_the_boxs_sessions(pg_url) >= 1  # (those open now)
        time.sleep(0.3)
        answer = httpx.get(url, headers=headers, timeout=30, verify=TLS)
        assert answer.status_code == 200, (path, answer.text)


def test_changes_after_an_idle_cut_are_served(pg_box: Box, pg_url: str) -> None:
    """A change of the account's own (a key made, renamed, revoked; a sign-in code asked) after
    an idle cut is served, not a 503: the session the server ended while it was idle is seen
    ended before the change's first statement, and a new one opened. Each is made once."""
    email, key = pg_box.new_user("10")
    headers = {"authorization": f"Bearer {key}"}
    keys = f"{pg_box.url}/api/v1/auth/key"
    assert httpx.get(keys, headers=headers, timeout=30, verify=TLS).status_code == 200

    def after_a_cut(method: str, url: str, body: dict[str, str] | None = None) -> httpx.Response:
        assert _drop_the_boxs_sessions(pg_url) >= 1  # (those open now: the work thread's too)
        time.sleep(0.3)  # idle: nothing of the box used its sessions meanwhile
        answer = httpx.request(method, url, json=body, headers=headers, timeout=30, verify=TLS)
        assert answer.status_code < 300, (method, answer.text)
        return answer

    made = after_a_cut("POST", keys, {"name": "made after a cut"}).json()["id"]
    after_a_cut("PATCH", f"{keys}/{made}", {"name": "renamed after a cut"})
    after_a_cut("DELETE", f"{keys}/{made}")
    after_a_cut("POST", f"{pg_box.url}/api/v1/auth/otp/request", {"email": email})
    assert pg_box.query(
        "SELECT name, revoked_at IS NOT NULL FROM api_key WHERE uuid = ?", made
    ) == [("renamed after a cut", True)]
    assert len(pg_box.query("SELECT id FROM api_key WHERE name LIKE '%after a cut'")) == 1


def test_usage_reads_after_an_idle_cut_are_served(pg_box: Box, pg_url: str) -> None:
    """The account's usage (GET /api/v1/customer/usage; the portal's usage, overview and
    payments alike) is read on the database thread, not a work thread: after an idle cut it
    is served too, not a 503 (a read that met the dropped session runs once more)."""
    _, key = pg_box.new_user("10")
    headers = {"authorization": f"Bearer {key}"}
    url = f"{pg_box.url}/api/v1/customer/usage"
    for _ in range(2):
        assert httpx.get(url, headers=headers, timeout=30, verify=TLS).status_code == 200
        assert _drop_the_boxs_sessions(pg_url) >= 1  # (those open now)
        time.sleep(0.3)
        answer = httpx.get(url, headers=headers, timeout=30, verify=TLS)
        assert answer.status_code == 200, answer.text
