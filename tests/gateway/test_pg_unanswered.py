"""A box on PostgreSQL whose database host stops answering (packets taken, never answered: not
refused) does not hang: a request that needs the database is a 503 `database_unavailable` within
the connect timeout, the event loop keeps serving what needs no database meanwhile (the hold
sweep, the refusal counts and the health check wait on threads), and once the host answers again
the box serves again. Its sessions carry the timeouts and keepalives (db/postgres.py
NETWORK_DEFAULTS), or what database.url's query string says instead."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from codelace_box.db.core import close_database, database, open_database
from tests.fakes.database_host import DatabaseHost
from tests.fakes.openai_upstream import FakeOpenAI
from tests.gateway.conftest import MODEL, Box, pg_box_at
from tests.pg_cluster import wanted_engine

pytestmark = [
    pytest.mark.timeout(150),
    pytest.mark.skipif(wanted_engine() != "postgres", reason="a PostgreSQL host's silence"),
]
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
CONNECT_TIMEOUT_SEC = 5  # NETWORK_DEFAULTS' connect_timeout
ANSWER_WITHIN_SEC = CONNECT_TIMEOUT_SEC + 5  # a 503 comes within the connect timeout, not 130 s
LOOP_FREE_SEC = 2.0  # a request that needs no database, while the database host is silent
DEFAULTS = {
    "connect_timeout": "5",
    "keepalives": "1",
    "keepalives_idle": "10",
    "keepalives_interval": "5",
    "keepalives_count": "3",
    "tcp_user_timeout": "15000",
}


def _via(url: str, port: int) -> str:
    """The database URL with the host's port replaced (the relay's)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{port}"))


@pytest.fixture
def host(pg_url: str) -> Iterator[DatabaseHost]:
    relay = DatabaseHost(int(urlsplit(pg_url).port or 5432)).start()
    yield relay
    relay.stop()


@pytest.fixture
def box(tmp_path: Path, pg_url: str, host: DatabaseHost, fake: FakeOpenAI) -> Iterator[Box]:
    """A box whose database is reached through `host`; its sweep every half second."""
    url = _via(pg_url, host.port)
    box = pg_box_at(tmp_path, url, fake, env={"CODELACE_HOLD_SWEEP_SEC": "0.5"})
    yield box
    host.answer_again()  # its stop writes what it counted
    box.server.stop()


class LoopWatch:
    """Asks the box, again and again, for a page that needs no database (a 404), timing each."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.took: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> LoopWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _watch(self) -> None:
        with httpx.Client(timeout=60) as client:
            while not self._stop.is_set():
                start = time.monotonic()
                assert client.get(f"{self.url}/no-such-page").status_code == 404
                self.took.append(time.monotonic() - start)
                time.sleep(0.1)


def _timed(ask: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    start = time.monotonic()
    answer = ask()
    return answer, time.monotonic() - start


def test_a_silent_database_host_is_a_quick_503_and_never_holds_the_loop(
    box: Box, host: DatabaseHost
) -> None:
    _, key = box.new_user("10")
    headers = {"authorization": f"Bearer {key}"}

    def chat() -> httpx.Response:
        url = f"{box.url}/v1/chat/completions"
        return httpx.post(url, json=CHAT, headers=headers, timeout=60)

    def health() -> httpx.Response:
        return httpx.get(f"{box.url}/healthz", timeout=60)

    assert chat().status_code == health().status_code == 200
    host.fall_silent()
    silent_since = time.monotonic()
    with LoopWatch(box.url) as watch:
        for name, ask in (("chat", chat), ("healthz", health)):
            answer, took = _timed(ask)
            assert answer.status_code == 503, (name, answer.text)
            assert answer.json()["error"]["code"] == "database_unavailable", (name, answer.text)
            assert took < ANSWER_WITHIN_SEC, (name, took)
        # Long enough for many sweeps (every 0.5 s), a refusal flush (the 404s: every 5 s)
        # and their attempts to connect, each up to the connect timeout.
        time.sleep(max(0.0, 2 * CONNECT_TIMEOUT_SEC + 1 - (time.monotonic() - silent_since)))
    assert host.unanswered >= 1  # the box did try the silent host
    assert len(watch.took) >= 20 and max(watch.took) < LOOP_FREE_SEC, watch.took
    host.answer_again()
    deadline = time.monotonic() + 30
    seen: list[int] = []
    while not seen or seen[-1] != 200:
        assert time.monotonic() < deadline, f"never served again: {seen}"
        seen.append(chat().status_code)
        time.sleep(0.2)
    assert set(seen) <= {200, 503}, seen
    assert health().status_code == 200
    assert "unhandled error" not in box.server.log_text()


def _session_settings() -> tuple[dict[str, str | None], dict[str, int]]:
    """The open database's session: its libpq parameters (NETWORK_DEFAULTS' names) and its
    socket's options as the kernel has them."""
    conn = database.connection()
    given = conn.info.get_parameters()
    params = {name: given.get(name) for name in DEFAULTS}
    with socket.socket(fileno=os.dup(conn.fileno())) as sock:
        tcp = socket.IPPROTO_TCP
        options = {
            "keepalives": sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
            "keepalives_idle": sock.getsockopt(tcp, socket.TCP_KEEPIDLE),
            "keepalives_interval": sock.getsockopt(tcp, socket.TCP_KEEPINTVL),
            "keepalives_count": sock.getsockopt(tcp, socket.TCP_KEEPCNT),
            "tcp_user_timeout": sock.getsockopt(tcp, socket.TCP_USER_TIMEOUT),
        }
    return params, options


def test_sessions_have_the_timeouts_and_keepalives_unless_the_url_sets_them(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PGCONNECT_TIMEOUT", raising=False)
    own = {"connect_timeout": "9", "keepalives_idle": "60", "tcp_user_timeout": "30000"}
    query = "&".join(f"{name}={value}" for name, value in own.items())
    short = pg_url.replace("postgresql://", "postgres://")  # the other spelling libpq takes
    for url, expected in ((pg_url, DEFAULTS), (f"{pg_url}?{query}", DEFAULTS | own),
                          (f"{short}?{query}", DEFAULTS | own)):  # fmt: skip
        open_database(url)
        try:
            params, options = _session_settings()
        finally:
            close_database()
        assert params == expected, url
        assert options == {name: int(expected[name]) for name in options}, url
    monkeypatch.setenv("PGCONNECT_TIMEOUT", "7")  # libpq's environment wins too
    open_database(pg_url)
    try:
        params, _ = _session_settings()
    finally:
        close_database()
    assert params == DEFAULTS | {"connect_timeout": "7"}
