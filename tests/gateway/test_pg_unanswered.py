"""A box on PostgreSQL whose database host stops answering (packets taken, never answered: not
refused) does not hang: a request that needs the database is a 503 `database_unavailable` within
the connect timeout, the event loop keeps serving what needs no database meanwhile (the hold
sweep, the refusal counts, the health check, the catalog's reload and the account, portal and
Stripe handlers' database work wait on threads), and once the host answers again the box serves
again. Its sessions carry the timeouts and keepalives (db/postgres.py NETWORK_DEFAULTS), or what
database.url's query string says instead."""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from peewee import OperationalError as PeeweeOperationalError

from codelace_box.db.core import close_database, database, open_database
from codelace_box.db.failures import database_unavailable, is_busy, is_unavailable
from codelace_box.db.pg_driver import open_postgres
from tests.accounts.conftest import console_code
from tests.fakes.database_host import DatabaseHost
from tests.fakes.openai_upstream import FakeOpenAI
from tests.gateway.conftest import MODEL, Box, pg_box_at
from tests.pg_cluster import wanted_engine
from tests.support import TLS

pytestmark = [
    pytest.mark.timeout(150),
    pytest.mark.skipif(wanted_engine() != "postgres", reason="a PostgreSQL host's silence"),
]
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
CONNECT_TIMEOUT_SEC = 5  # NETWORK_DEFAULTS' connect_timeout
ANSWER_WITHIN_SEC = CONNECT_TIMEOUT_SEC + 5  # a 503 comes within the connect timeout, not 130 s
SESSION_ENDS_SEC = 2  # an open session on the silent host (its keepalives' and timeouts' end)
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


Page = tuple[str, int]  # a path that needs no database, and its status


class LoopWatch:
    """Asks the box, again and again, for pages that need no database (by default a 404), in
    turn, timing each; an answer with another status is kept in `wrong`."""

    def __init__(self, url: str, pages: tuple[Page, ...] = (("/no-such-page", 404),)) -> None:
        self.url = url
        self.pages = pages
        self.took: list[float] = []
        self.wrong: list[tuple[str, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> LoopWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _watch(self) -> None:
        with httpx.Client(timeout=60, verify=TLS) as client:
            turn = 0
            while not self._stop.is_set():
                path, status = self.pages[turn % len(self.pages)]
                turn += 1
                start = time.monotonic()
                answer = client.get(f"{self.url}{path}")
                self.took.append(time.monotonic() - start)
                if answer.status_code != status:
                    self.wrong.append((path, answer.status_code))
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
        return httpx.post(url, json=CHAT, headers=headers, timeout=60, verify=TLS)

    def health() -> httpx.Response:
        return httpx.get(f"{box.url}/healthz", timeout=60, verify=TLS)

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
    _until_served_again(chat)
    assert health().status_code == 200
    assert "unhandled error" not in box.server.log_text()


def _until_served_again(ask: Callable[[], httpx.Response]) -> None:
    """Ask until a 200 (30 s at most); only 503s before it."""
    deadline = time.monotonic() + 30
    seen: list[int] = []
    while not seen or seen[-1] != 200:
        assert time.monotonic() < deadline, f"never served again: {seen}"
        seen.append(ask().status_code)
        time.sleep(0.2)
    assert set(seen) <= {200, 503}, seen


def test_a_key_lookup_waits_a_silent_hosts_timeouts_once(box: Box, host: DatabaseHost) -> None:
    """A lookup whose open session's host stopped answering fails when the session's timeouts
    end it (the relay's SESSION_ENDS_SEC here) with a 503, not run once more into a connect
    timeout; the next one, opening a session, waits the connect timeout once, not twice."""
    _, key = box.new_user("10")
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    count = partial(httpx.post, f"{box.url}/v1/messages/count_tokens", json=body,
                    headers={"x-api-key": key}, timeout=60, verify=TLS)  # fmt: skip
    assert count().status_code == 200
    host.fall_silent(open_sessions_end_after=SESSION_ENDS_SEC)
    for waited in (SESSION_ENDS_SEC, CONNECT_TIMEOUT_SEC):
        answer, took = _timed(count)
        assert answer.status_code == 503 and took < waited + 2, (answer.text, took, waited)
    host.answer_again()
    _until_served_again(count)


def _sign_in_to_portal(client: httpx.Client, box: Box, email: str) -> None:
    """Sign `client` (the page's Origin in its headers) in to the portal as `email`; it keeps
    the session cookie."""
    asked = client.post("/portal/api/signin/code", json={"email": email})
    assert asked.status_code == 200, asked.text
    body = {"email": email, "code": console_code(box.server, email)}
    verified = client.post("/portal/api/signin/verify", json=body)
    assert verified.status_code == 200, verified.text


def _database_calls(
    plain: httpx.Client, keyed: httpx.Client, portal: httpx.Client, email: str
) -> dict[str, Callable[[], httpx.Response]]:
    """A call of every kind of handler whose work needs the database: sign-in, the account and
    its keys, the customer's balance and payments, the portal's session, data and sign-in,
    Stripe's return page; and a scrape of the metrics, which reads the open holds."""
    asking = {"email": email}
    return {
        "otp request": partial(plain.post, "/api/v1/auth/otp/request", json=asking),
        "otp verify": partial(plain.post, "/api/v1/auth/otp/verify",
                              json=asking | {"code": "0" * 6}),
        "me": partial(keyed.get, "/api/v1/auth/me"),
        "keys": partial(keyed.get, "/api/v1/auth/key"),
        "balance": partial(keyed.get, "/api/v1/customer/balance"),
        "payments": partial(keyed.get, "/api/v1/customer/payment"),
        "portal session": partial(portal.get, "/portal/api/session"),
        "portal keys": partial(portal.get, "/portal/api/keys"),
        "portal code": partial(portal.post, "/portal/api/signin/code", json=asking),
        "stripe return": partial(plain.get, "/billing/success?session_id=cs_test_silent"),
        "metrics": partial(plain.get, "/metrics"),
    }  # fmt: skip


def _all_at_once(
    calls: dict[str, Callable[[], httpx.Response]],
) -> dict[str, tuple[httpx.Response, float]]:
    """Every call at the same time, each on a thread of its own: its answer and how long it took."""
    answers: dict[str, tuple[httpx.Response, float]] = {}

    def run(name: str) -> None:
        answers[name] = _timed(calls[name])

    threads = [threading.Thread(target=run, args=(name,)) for name in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return answers


def test_with_the_database_silent_the_catalog_and_static_pages_answer_the_rest_is_503(
    box: Box, host: DatabaseHost
) -> None:
    """The model list and the prices (the catalog's snapshot: its reload waits on the database
    thread, no longer on the event loop), the portal's page and its files, and a 404 answer at
    once throughout; every account, portal and Stripe call, all at the same time, is a
    503 `database_unavailable` within the connect timeout (a metrics scrape answers then,
    with `codelace_database_up 0` and no open holds) (their database work waits on a
    thread, and those queued behind a connect that timed out fail with it). Once the host
    answers again, a catalog change reaches the box again."""
    email, key = box.new_user("10")
    with (
        httpx.Client(base_url=box.url, timeout=60, verify=TLS) as plain,
        httpx.Client(
            base_url=box.url, timeout=60, headers={"authorization": f"Bearer {key}"}, verify=TLS
        ) as keyed,
        httpx.Client(
            base_url=box.url, timeout=60, headers={"origin": box.url}, verify=TLS
        ) as portal,
    ):
        _sign_in_to_portal(portal, box, email)
        calls = _database_calls(plain, keyed, portal, email)
        assert calls["portal session"]().json()["signed_in"] is True
        _silence_stops_only_the_database_calls(box, host, calls, _pages_without_database(plain))
        host.answer_again()
        _until_served_again(calls["portal keys"])
    box.cli("models", "set", "fake/after-silence", "--input-per-1m", "1", "--output-per-1m", "2",
            "--provider", "fake", "--upstream-model", "after")  # fmt: skip
    deadline = time.monotonic() + 5
    while httpx.get(f"{box.url}/v1/models/fake%2Fafter-silence", verify=TLS).status_code != 200:
        assert time.monotonic() < deadline, "the catalog is reloaded again once the host answers"
        time.sleep(0.05)
    assert "unhandled error" not in box.server.log_text()


def _pages_without_database(client: httpx.Client) -> tuple[Page, ...]:
    """The model list, the prices, the portal's page and one of its files, a 404."""
    asset = re.search(r'/portal/assets/[^"]+', client.get("/").text)
    assert asset is not None
    return (("/v1/models", 200), ("/api/v1/public/pricing", 200), ("/", 200),
            (asset.group(0), 200), ("/no-such-page", 404))  # fmt: skip


def _silence_stops_only_the_database_calls(
    box: Box,
    host: DatabaseHost,
    calls: dict[str, Callable[[], httpx.Response]],
    pages: tuple[Page, ...],
) -> None:
    """The host falls silent: `pages` answer at once throughout, `calls` (all at once) are each
    a 503 within the connect timeout (the metrics a 200 saying the database is down), and the
    catalog's failed reload is logged."""
    host.fall_silent()
    silent_since = time.monotonic()
    with LoopWatch(box.url, pages) as watch:
        answers = _all_at_once(calls)
        # Long enough for several reloads of the catalog and sweeps, each trying to connect
        time.sleep(max(0.0, 2 * CONNECT_TIMEOUT_SEC + 1 - (time.monotonic() - silent_since)))
    assert sorted(answers) == sorted(calls) and host.unanswered >= 1
    for name, (answer, took) in answers.items():
        if name == "metrics":  # the scrape answers, without the open holds it could not read
            assert answer.status_code == 200, answer.text
            assert "codelace_database_up 0.0" in answer.text and took < ANSWER_WITHIN_SEC
            assert "codelace_open_holds " not in answer.text
            continue
        assert answer.status_code == 503, (name, answer.text)
        assert answer.json()["error"]["code"] == "database_unavailable", (name, answer.text)
        assert took < ANSWER_WITHIN_SEC, (name, took)
    assert not watch.wrong, watch.wrong
    assert len(watch.took) >= 20 and max(watch.took) < LOOP_FREE_SEC, watch.took
    assert "reloading the catalog failed" in box.server.log_text()


def test_a_query_that_cannot_open_its_session_is_unavailable_not_an_internal_error(
    pg_url: str, host: DatabaseHost
) -> None:
    """peewee wraps a connect that timed out twice when a query opened it (the connect's error
    in the query's): still the silent server's 503, never a 500."""
    host.fall_silent()
    db = open_postgres(f"{_via(pg_url, host.port)}?connect_timeout=2")
    with pytest.raises(PeeweeOperationalError) as caught:
        db.execute_sql("SELECT 1")
    assert isinstance(getattr(caught.value, "orig", None), PeeweeOperationalError)
    assert is_unavailable(caught.value) and not is_busy(caught.value)
    assert database_unavailable(caught.value).code == "database_unavailable"


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


def _server_keepalives() -> dict[str, str]:
    """The open database's session's keepalives as the server has them (its socket's)."""
    conn = database.connection()
    names = ("tcp_keepalives_idle", "tcp_keepalives_interval", "tcp_keepalives_count",
             "tcp_user_timeout")  # fmt: skip
    return {name: conn.execute(f"SHOW {name}").fetchone()[0] for name in names}


def test_the_server_keeps_the_sessions_keepalives_too(pg_url: str) -> None:
    """A box's machine lost (no FIN, no RST) is noticed by the server as soon as the box would
    notice a lost server, not after the system's two hours: until then the server would keep
    its sessions, their locks, and its hold owner's claim (the other boxes would not free its
    holds)."""
    expected = {"tcp_keepalives_idle": "10", "tcp_keepalives_interval": "5",
                "tcp_keepalives_count": "3", "tcp_user_timeout": "15000"}  # fmt: skip
    own = {"keepalives_idle": "60", "tcp_user_timeout": "30000"}
    query = "&".join(f"{name}={value}" for name, value in own.items())
    overridden = expected | {"tcp_keepalives_idle": "60", "tcp_user_timeout": "30000"}
    for url, wanted in ((pg_url, expected), (f"{pg_url}?{query}", overridden)):
        open_database(url)
        try:
            assert _server_keepalives() == wanted, url
        finally:
            close_database()
