"""On PostgreSQL a request's key lookup waits for the server off the event loop: while one
request's lookup waits (here, for a lock held on the keys' table), the box answers others; a
lookup that cannot have its lock is a 503 in the route's own envelope, not an internal error;
and a key's row locked by another transaction (another box's batch) delays no lookup: the
once-a-minute last-used note is what would have waited, and it is skipped then."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import psycopg
import pytest

from tests.gateway.conftest import MODEL, Box
from tests.support import TLS
from tests.timing import seen_within

pytestmark = pytest.mark.timeout(90)


def _until_a_lock_is_awaited(url: str) -> None:
    """Return once some connection of the database waits for a lock (10 s at most)."""
    deadline = time.monotonic() + 10
    with psycopg.connect(url, autocommit=True) as conn:
        while not conn.execute("SELECT 1 FROM pg_locks WHERE NOT granted").fetchone():
            assert time.monotonic() < deadline, "no request ever waited for the lock"
            time.sleep(0.01)


@contextmanager
def _waiting_on_lock(
    url: str, call: Callable[[], None], lock_sql: str, params: tuple[Any, ...] = ()
) -> Iterator[None]:
    """`lock_sql` taken on a connection of its own, then `call` run on a thread until it waits
    for that lock; on leaving, the lock's transaction is rolled back and the call joined."""
    waiting = threading.Thread(target=call)
    with psycopg.connect(url) as holder:
        holder.execute(lock_sql, params)
        waiting.start()
        _until_a_lock_is_awaited(url)
        yield
        holder.rollback()
    waiting.join(30)


def test_a_key_lookup_that_waits_for_the_database_stops_no_other_request(
    pg_box: Box, pg_url: str
) -> None:
    _, key = pg_box.new_user("10")
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
    answers: list[int] = []

    def call() -> None:
        headers = {"authorization": f"Bearer {key}"}
        url = f"{pg_box.url}/v1/chat/completions"
        answers.append(
            httpx.post(url, json=body, headers=headers, timeout=30, verify=TLS).status_code
        )

    with _waiting_on_lock(pg_url, call, "LOCK TABLE api_key IN ACCESS EXCLUSIVE MODE"):
        began = time.monotonic()
        listed = httpx.get(f"{pg_box.url}/v1/models", timeout=5, verify=TLS)
        assert listed.status_code == 200
        assert time.monotonic() - began < 2, "the loop waited for the key lookup"
        assert answers == [], "the lookup did wait for the lock"
    assert answers == [200]


def test_lookups_batched_together_each_get_their_own_answer(pg_box: Box) -> None:
    """Many requests at once with valid, revoked, unknown and malformed keys and a disabled
    account's key: the lookups that share a batch each answer for their own key."""
    _, valid = pg_box.new_user("1")
    _, other_valid = pg_box.new_user("1")
    disabled_email, disabled = pg_box.new_user("1")
    pg_box.cli("users", "disable", disabled_email)
    _, revoked = pg_box.new_user("1")
    listed = httpx.get(f"{pg_box.url}/api/v1/auth/key", headers=_bearer(revoked), verify=TLS).json()
    gone = httpx.delete(
        f"{pg_box.url}/api/v1/auth/key/{listed[0]['id']}", headers=_bearer(revoked), verify=TLS
    )
    assert gone.status_code == 204
    expected = {
        valid: (200, None), other_valid: (200, None), revoked: (401, "invalid_api_key"),
        disabled: (403, "account_disabled"), "cl_" + "x" * 40: (401, "invalid_api_key"),
        "not-a-key": (401, "invalid_api_key"),
    }  # fmt: skip
    keys = list(expected) * 8
    start = threading.Barrier(len(keys))
    answers: dict[int, tuple[int, str | None]] = {}

    def ask(number: int, key: str) -> None:
        start.wait(10)
        answer = httpx.get(
            f"{pg_box.url}/api/v1/auth/me", headers=_bearer(key), timeout=30, verify=TLS
        )
        code = None if answer.is_success else answer.json()["error"]["code"]
        answers[number] = (answer.status_code, code)

    threads = [threading.Thread(target=ask, args=item) for item in enumerate(keys)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert [answers[number] for number in range(len(keys))] == [expected[k] for k in keys]


def _bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def _chat(box: Box, key: str, timeout: float) -> httpx.Response:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
    headers = {"authorization": f"Bearer {key}"}
    return httpx.post(
        f"{box.url}/v1/chat/completions", json=body, headers=headers, timeout=timeout, verify=TLS
    )


def test_a_lookup_that_cannot_have_its_lock_is_a_503_in_the_routes_envelope(
    pg_box: Box, pg_url: str
) -> None:
    _, key = pg_box.new_user("10")
    messages = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
    with psycopg.connect(pg_url) as holder:
        holder.execute("LOCK TABLE api_key IN ACCESS EXCLUSIVE MODE")  # past the lock timeout
        openai = _chat(pg_box, key, 30)
        url = f"{pg_box.url}/v1/messages"
        anthropic = httpx.post(
            url, json=messages, headers={"x-api-key": key}, timeout=30, verify=TLS
        )
        holder.rollback()
    assert openai.status_code == 503, openai.text
    assert openai.json()["error"]["code"] == "database_busy"
    assert anthropic.status_code == 503, anthropic.text
    assert anthropic.json()["type"] == "error" and anthropic.json()["error"]["type"]
    assert "Traceback" not in pg_box.server.log_text()


def test_a_key_row_locked_elsewhere_delays_no_lookup(pg_box: Box, pg_url: str) -> None:
    email, key = pg_box.new_user("10")  # never used: its first request notes the use
    _, other_key = pg_box.new_user("10")
    lock_key = (
        'SELECT 1 FROM api_key k JOIN "user" u ON u.id = k.user_id WHERE u.email = %s '
        "FOR NO KEY UPDATE OF k"
    )
    last_used = (
        'SELECT k.last_used_at FROM api_key k JOIN "user" u ON u.id = k.user_id WHERE u.email = ?'
    )
    with psycopg.connect(pg_url) as holder:  # as another box's batch updating the key's row
        holder.execute(lock_key, (email,))
        for presented in (key, other_key):  # answered while the row is still locked
            assert _chat(pg_box, presented, 5).status_code == 200
        holder.rollback()
    assert pg_box.query(last_used, email) == [(None,)]  # the note was skipped, not waited for
    assert _chat(pg_box, key, 30).status_code == 200
    assert pg_box.query(last_used, email)[0][0] is not None  # and made at the next request


def test_a_failed_last_used_note_fails_no_request(pg_box: Box, pg_url: str) -> None:
    """`last_used_at` is bookkeeping: when its write fails (here a trigger refuses it), the
    requests of that batch are still answered, and the note is made again later."""
    _, key = pg_box.new_user("10")
    refuse = (
        "CREATE FUNCTION refuse_last_used() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'no last_used_at today'; END $$; "
        "CREATE TRIGGER refuse_last_used BEFORE UPDATE OF last_used_at ON api_key "
        "FOR EACH ROW EXECUTE FUNCTION refuse_last_used()"
    )
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute("UPDATE api_key SET last_used_at = NULL")
        admin.execute(refuse)
    assert _chat(pg_box, key, 30).status_code == 200
    me = httpx.get(f"{pg_box.url}/api/v1/auth/me", headers=_bearer(key), timeout=30, verify=TLS)
    assert me.status_code == 200
    assert pg_box.query("SELECT COUNT(*) FROM api_key WHERE last_used_at IS NOT NULL") == [(0,)]
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute("DROP TRIGGER refuse_last_used ON api_key")
    assert _chat(pg_box, key, 30).status_code == 200
    assert pg_box.query("SELECT COUNT(*) FROM api_key WHERE last_used_at IS NOT NULL") == [(1,)]


def test_a_handler_waiting_for_a_row_lock_does_not_hold_the_catalog_back(
    pg_box: Box, pg_url: str
) -> None:
    """A handler's write waiting for a row lock (another box's transaction on the account's
    row) holds the database thread up to the lock timeout (10 s); a price changed meanwhile
    is still billed from the next request after a second on, as the catalog's reload does
    not queue behind it."""
    email, key = pg_box.new_user("10")
    answers: list[int] = []

    def rename() -> None:
        url = f"{pg_box.url}/api/v1/auth/me"
        patched = httpx.patch(
            url, json={"display_name": "Ana"}, headers=_bearer(key), timeout=30, verify=TLS
        )
        answers.append(patched.status_code)

    with _waiting_on_lock(
        pg_url, rename, 'SELECT 1 FROM "user" WHERE email = %s FOR UPDATE', (email,)
    ):
        pg_box.cli("models", "set", MODEL, "--input-per-1m", "7", "--output-per-1m", "9")
        seen_within(lambda: _input_price(pg_box) == 7, time.monotonic(), 1.0, "the new price")
    assert answers == [200]


def _input_price(box: Box) -> float:
    listed = httpx.get(f"{box.url}/api/v1/public/pricing", timeout=5, verify=TLS).json()
    return next(float(m["input_per_1m"]) for m in listed if m["model"] == MODEL)


def test_a_usage_read_that_waits_delays_no_key_creation(pg_box: Box, pg_url: str) -> None:
    """A read that grows with history (a usage page; here it waits for a lock on the totals,
    as a long history's read takes its time) does not hold the worker's sign-ins and key
    creations queued behind it: they run on a thread of their own."""
    _, reader = pg_box.new_user("1")
    _, creator = pg_box.new_user("1")
    answers: list[int] = []

    def read_usage() -> None:
        url = f"{pg_box.url}/api/v1/customer/usage"
        answers.append(httpx.get(url, headers=_bearer(reader), timeout=30, verify=TLS).status_code)

    with _waiting_on_lock(pg_url, read_usage, "LOCK TABLE account_usage IN ACCESS EXCLUSIVE MODE"):
        began = time.monotonic()
        created = httpx.post(
            f"{pg_box.url}/api/v1/auth/key", headers=_bearer(creator), timeout=30, verify=TLS
        )
        took = time.monotonic() - began
        assert answers == [], "the usage read did wait for the lock"
    assert created.status_code == 200, created.text
    assert took < 2, f"the key creation waited {took:.1f} s behind the usage read"
    assert answers == [200]


def test_a_key_being_flagged_leaves_the_rotation_before_its_write(pg_box: Box, pg_url: str) -> None:
    """A key whose refusal its probe confirmed leaves this worker's rotation at once, not once
    its flag is written: while that write waits (here for a lock on the key's row), the other
    requests go to the other key, promptly, none to the refused one."""
    first, second = "sk-fake-key-0001", "sk-fake-key-0002"
    pg_box.cli("providers", "key-add", "fake", "--key", second)
    time.sleep(1.1)  # the catalog is reloaded within a second
    _, key = pg_box.new_user("10")
    fake = pg_box.fake
    fake.key_status[first] = fake.probe_status[first] = 401
    answers: list[int] = []

    def refused_then_flagged() -> None:
        for _ in range(2):  # round robin: one of these meets the refused key
            answers.append(_chat(pg_box, key, 30).status_code)

    lock = "SELECT 1 FROM provider_key WHERE id = (SELECT min(id) FROM provider_key) FOR UPDATE"
    with _waiting_on_lock(pg_url, refused_then_flagged, lock):
        sent = len(fake.requests)
        for _ in range(3):
            assert _chat(pg_box, key, 5).status_code == 200
        assert {r.api_key for r in fake.requests[sent:]} == {second}
    assert answers == [200, 200]


def test_a_call_waiting_for_a_row_lock_delays_no_other_accounts_call(
    pg_box: Box, pg_url: str
) -> None:
    """An account's call waiting for a lock on its row (another box's transaction, up to the
    10 s lock timeout) holds back no other account's call: the work goes to the least busy of
    the worker's work threads, not to one queue behind it."""
    waiting_email, waiting_key = pg_box.new_user("1")
    _, other_key = pg_box.new_user("1")
    answers: list[int] = []

    def rename() -> None:
        url = f"{pg_box.url}/api/v1/auth/me"
        patched = httpx.patch(
            url, json={"display_name": "Ana"}, headers=_bearer(waiting_key), timeout=30, verify=TLS
        )
        answers.append(patched.status_code)

    lock = 'SELECT 1 FROM "user" WHERE email = %s FOR UPDATE'
    with _waiting_on_lock(pg_url, rename, lock, (waiting_email,)):
        began = time.monotonic()
        created = httpx.post(
            f"{pg_box.url}/api/v1/auth/key", headers=_bearer(other_key), timeout=30, verify=TLS
        )
        took = time.monotonic() - began
        assert answers == [], "the rename did wait for the lock"
    assert created.status_code == 200, created.text
    assert took < 2, f"the other account's key creation waited {took:.1f} s behind the lock"
    assert answers == [200]
