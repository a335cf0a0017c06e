"""How `codelace-box serve` stops and keeps its worker processes: SIGTERM lets the request in
flight finish (a streamed completion, a call its client left) and settles it, at any moment of
a two-worker start; a crashed worker is replaced and its holds freed; workers stop with their
supervisor. (test_server.py: what a running server answers.)"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.foundation.conftest import make_workspace
from tests.ports import until_read
from tests.support import TLS, ServerProcess, free_port, sdk_http

# Some tests start a box a dozen times: 54-65 s on a slow 2-core machine running the suite, 90 s
# when other suites ran beside it. Each start and stop has its own deadline; this is the backstop.
pytestmark = pytest.mark.timeout(180)
JSON_ROUTE = "/api/v1/auth/otp/request"


def slow_post(port: int, body: bytes, split: int) -> socket.socket:
    """Start a POST whose body arrives in two parts: the request is in flight until the end."""
    connection = socket.create_connection(("127.0.0.1", port))
    head = (
        f"POST {JSON_ROUTE} HTTP/1.1\r\nHost: box\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    connection.sendall(head + body[:split])
    return connection


def read_response(connection: socket.socket) -> bytes:
    connection.settimeout(10)
    data = b""
    while chunk := connection.recv(65536):
        data += chunk
    return data


def refuses_new_connections_within(base_url: str, seconds: float) -> None:
    """A stopping server takes no new connection: at once on a fast machine, within
    `seconds` on a slow one (no fixed sleep that a loaded CI runner could outlast)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            httpx.get(base_url + "/healthz", timeout=2, verify=TLS)
        except httpx.HTTPError:
            return
        assert time.monotonic() < deadline, f"still takes new connections after {seconds} s"
        time.sleep(0.05)


def test_sigterm_lets_the_request_in_flight_finish_then_exits_zero(tmp_path: Path) -> None:
    port = free_port()
    space = make_workspace(tmp_path, server={"port": port})
    server = ServerProcess(space.config, port).start()
    body = b'{"email": "in-flight@example.com"}'
    connection = slow_post(port, body, 10)
    try:
        until_read(port)  # the request is in flight
        assert server.process is not None
        server.process.send_signal(signal.SIGTERM)
        refuses_new_connections_within(server.base_url, 10)
        assert server.process.poll() is None, "stopped before the request in flight finished"
        stopped_at = time.monotonic()
        connection.sendall(body[10:])
        raw = read_response(connection)  # the server closes the connection after answering
    except BaseException:
        server.kill()  # not left running behind the failed test
        raise
    finally:
        connection.close()
    head, _, payload = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), raw
    assert b"connection: close" in head.lower()
    assert json.loads(payload) == {"email": "in-flight@example.com", "expires_in_sec": 600}
    assert server.process.wait(10) == 0
    assert time.monotonic() - stopped_at < 15  # not the stop's 30 s window (6.5 s seen in CI)


def test_two_workers_serve_and_stop_cleanly(tmp_path: Path) -> None:
    port = free_port()
    space = make_workspace(tmp_path, server={"port": port})
    server = ServerProcess(space.config, port).start("--workers", "2")
    try:

        def call(number: int) -> Any:
            if number % 2:
                return httpx.get(server.base_url + "/healthz", verify=TLS).status_code
            response = httpx.post(
                server.base_url + JSON_ROUTE, json={"email": f"w{number}@example.com"}, verify=TLS
            )
            return response.status_code

        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(call, range(24)))
        assert set(statuses) <= {200, 429}
        assert statuses.count(200) >= 12
        workers = set(server.wait_for_log(r"Starting worker \[(\d+)\]", 2))  # the 2nd may lag
        assert len(workers) == 2
    finally:
        assert server.stop() == 0
    time.sleep(0.2)
    for pid in workers:
        assert (
            not Path(f"/proc/{pid}").exists()
            or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
        )


# The moments of a two-worker start at which an operator's SIGTERM can land: before the
# supervisor exists, while workers import, as they report ready, and once serving.
START_MOMENTS = {
    "supervisor starting": (r"codelace-box serving on", 1),
    "workers starting": (r"Starting worker \[(\d+)\]", 1),
    "workers ready": (r"Worker ready \[(\d+)\]", 2),
}


@pytest.mark.parametrize("moment", list(START_MOMENTS))
def test_sigterm_at_any_moment_of_a_two_worker_start_stops_cleanly(
    tmp_path: Path, moment: str
) -> None:
    """Sanic's own handler could hang or die (exit 1) here: see codelace_box/stopping.py."""
    pattern, count = START_MOMENTS[moment]
    for attempt in range(3):
        server = launched(tmp_path / str(attempt), workers=2)
        try:
            server.wait_for_log(pattern, count)
            stopped_at = time.monotonic()
            assert server.stop() == 0, server.log_text()
        except BaseException:
            server.kill()  # not left running behind the failed test
            raise
        # A worker that lost the signal while starting is signalled again after 3 s.
        assert time.monotonic() - stopped_at < 15, server.log_text()
        assert "Experienced exception" not in server.log_text()
        assert "Traceback" not in server.log_text(), server.log_text()  # none still starting
        assert not re.search(r"^error: ", server.log_text(), re.MULTILINE)  # the CLI's own
        started = re.findall(r"Starting worker \[(\d+)\]", server.log_text())
        assert all(not pid_runs(int(pid)) for pid in started), server.log_text()


def launched(folder: Path, workers: int) -> ServerProcess:
    """`serve` of a new workspace in `folder`, launched (not waited for)."""
    port = free_port()
    space = make_workspace(folder, server={"port": port})
    server = ServerProcess(space.config, port).launch("--workers", str(workers))
    assert server.process is not None
    return server


def pid_runs(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    try:
        return "zombie" not in status.read_text().lower()
    except FileNotFoundError:
        return False


@pytest.mark.parametrize(("workers", "piece_delay"), [(1, 0.2), (2, 0.2), (2, 1.5)])
def test_sigterm_lets_a_streamed_completion_finish_and_settle(
    tmp_path: Path, workers: int, piece_delay: float
) -> None:
    """The product's longest requests: a stream in flight at SIGTERM ends whole and is billed,
    also when it needs longer than the 10 s Sanic's supervisor gives a worker (8 x 1.5 s)."""
    import openai

    from tests.fakes.openai_upstream import FakeOpenAI, Reply

    fake = FakeOpenAI().start()
    space, port, key = metered_workspace(tmp_path, fake.base_url, "streamer@example.com")
    server = ServerProcess(space.config, port).start("--workers", str(workers))
    server.wait_for_log(r"Worker ready \[(\d+)\]", workers)
    pieces = [f"w{n} " for n in range(8)]
    fake.push(Reply(pieces=pieces, piece_delay=piece_delay, prompt_tokens=7, completion_tokens=8))
    client = openai.OpenAI(
        base_url=server.base_url + "/v1", api_key=key, max_retries=0, http_client=sdk_http(openai)
    )
    try:
        stream = client.chat.completions.create(
            model="fake/m", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        received = []
        for number, chunk in enumerate(stream):
            if number == 1:
                assert server.process is not None
                server.process.send_signal(signal.SIGTERM)
            received += [c.delta.content or "" for c in chunk.choices]
        assert "".join(received) == "".join(pieces)
        assert server.process is not None and server.process.wait(10) == 0, server.log_text()
    finally:
        client.close()
        server.stop()
        fake.stop()
    # 7 tokens at $1/1M + 8 tokens at $2/1M = 23 micro-USD = 23,000 nano-USD, settled
    assert space.json("users", "show", "streamer@example.com")["credit_balance_usd"] == 0.999977
    assert space.sql("SELECT status, cost_nanos FROM usage_record") == [("ok", 23_000)]
    assert space.run("doctor").stdout.startswith("ok: ")


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream-while-opening"])
def test_sigterm_waits_for_a_call_its_client_left_and_charges_it(
    tmp_path: Path, stream: bool
) -> None:
    """A call the client gave up on before the upstream's first byte still runs upstream (the
    operator pays the provider for it): a stop lets it finish (a stream: open, then read to
    its end) and charges it before the process exits, with no error logged."""
    from tests.fakes.openai_upstream import FakeOpenAI, Reply

    fake = FakeOpenAI().start()
    email = f"leaver-{stream}@example.com".lower()
    space, port, key = metered_workspace(tmp_path, fake.base_url, email)
    server = ServerProcess(space.config, port).start()
    fake.push(Reply(delay_before=1.5, prompt_tokens=7, completion_tokens=8))
    body = {"model": "fake/m", "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    headers = {"authorization": f"Bearer {key}"}
    try:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(server.base_url + "/v1/chat/completions", json=body, headers=headers,
                       timeout=0.5, verify=TLS)  # fmt: skip
        assert server.stop() == 0, server.log_text()
    finally:
        server.stop()
        fake.stop()
    log = server.log_text()
    assert space.sql("SELECT status, cost_nanos FROM usage_record") == [("abandoned", 23_000)]
    assert space.json("users", "show", email)["credit_balance_usd"] == 0.999977
    assert "Traceback" not in log and " ERROR " not in log, log
    assert space.run("doctor").stdout.startswith("ok: ")


def test_sigterm_while_a_stream_opens_lets_it_open_relay_and_settle(tmp_path: Path) -> None:
    """SIGTERM while a streamed call waits for the upstream's first byte, its client still
    there: the stream opens, reaches the client whole and is charged once."""
    import openai

    from tests.fakes.openai_upstream import FakeOpenAI, Reply

    fake = FakeOpenAI().start()
    space, port, key = metered_workspace(tmp_path, fake.base_url, "waiter@example.com")
    server = ServerProcess(space.config, port).start()
    pieces = ["a ", "b ", "c"]
    fake.push(Reply(pieces=pieces, delay_before=1.5, prompt_tokens=7, completion_tokens=8))
    client = openai.OpenAI(
        base_url=server.base_url + "/v1", api_key=key, max_retries=0, http_client=sdk_http(openai)
    )

    def stream() -> str:
        chunks = client.chat.completions.create(
            model="fake/m", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        return "".join(c.delta.content or "" for chunk in chunks for c in chunk.choices)

    try:
        with ThreadPoolExecutor(1) as pool:
            received = pool.submit(stream)
            deadline = time.monotonic() + 10
            while not fake.requests and time.monotonic() < deadline:
                time.sleep(0.02)  # the upstream has the call: the stream is opening
            assert server.process is not None
            server.process.send_signal(signal.SIGTERM)
            assert received.result(timeout=20) == "".join(pieces)
        assert server.process.wait(20) == 0, server.log_text()
    finally:
        client.close()
        server.stop()
        fake.stop()
    assert space.sql("SELECT status, cost_nanos FROM usage_record") == [("ok", 23_000)]
    assert space.json("users", "show", "waiter@example.com")["credit_balance_usd"] == 0.999977
    assert "Traceback" not in server.log_text(), server.log_text()
    assert space.run("doctor").stdout.startswith("ok: ")


def metered_workspace(tmp_path: Path, upstream_url: str, email: str) -> tuple[Any, int, str]:
    """A workspace with provider `fake` at upstream_url, model fake/m at $1/$2 per 1M tokens
    and a user with $1 of credit: (workspace, port, the user's API key)."""
    port = free_port()
    space = make_workspace(tmp_path, server={"port": port})
    space.run("providers", "add", "fake", "--kind", "openai", "--base-url", upstream_url,
              "--key", "sk-fake-upstream-key-0001")  # fmt: skip
    space.run("models", "set", "fake/m", "--input-per-1m", "1", "--output-per-1m", "2")
    space.run("users", "create", email)
    space.run("credit", email, "1", "--reason", "test")
    return space, port, space.run("keys", "create", email).stdout.strip()


def test_a_crashed_worker_is_replaced_and_its_holds_freed(tmp_path: Path) -> None:
    """A worker killed mid-request leaves its reservation behind; a surviving worker frees it
    within its sweep interval, not at the next start, and the supervisor starts a new worker
    in its place."""
    from tests.fakes.openai_upstream import FakeOpenAI, Reply

    fake = FakeOpenAI().start()
    space, port, key = metered_workspace(tmp_path, fake.base_url, "crash@example.com")
    env = {"CODELACE_HOLD_SWEEP_SEC": "0.2"}
    server = ServerProcess(space.config, port, env=env).start("--workers", "2")
    started_before = server.wait_for_log(r"Worker ready \[(\d+)\]", 2)
    fake.push(Reply(pieces=["a", "b", "c"], hang_after=2))
    body = {"model": "fake/m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    headers = {"authorization": f"Bearer {key}"}
    try:
        with httpx.stream("POST", server.base_url + "/v1/chat/completions", json=body,
                          headers=headers, timeout=10, verify=TLS) as answer:  # fmt: skip
            assert answer.status_code == 200, answer.read()
            lines = answer.iter_lines()  # kept: a dropped iterator closes the connection
            next(lines)  # the call is in flight: its hold is taken
            [(owner, held)] = space.sql("SELECT owner, amount_nanos FROM hold")
            assert held > 0
            os.kill(int(owner.split(":")[1]), signal.SIGKILL)  # <host>:<pid>:<token>
        deadline = time.monotonic() + 10
        while space.sql("SELECT COUNT(*) FROM hold") != [(0,)]:
            assert time.monotonic() < deadline, server.log_text()
            time.sleep(0.05)
        assert space.sql('SELECT held_nanos FROM "user"') == [(0,)]
        assert "released 1 holds of" in server.log_text()
        assert httpx.get(server.base_url + "/healthz", verify=TLS).status_code == 200
        killed = owner.split(":")[1]
        ready = server.wait_for_log(r"Worker ready \[(\d+)\]", 3, wait=20)
        assert killed in ready and f"[{killed}] died (exit -9)" in server.log_text()
        replacement = (set(ready) - {killed} - set(started_before)).pop()
        assert pid_runs(int(replacement))
        assert server.stop() == 0, server.log_text()
        assert not pid_runs(int(replacement))
    finally:
        server.stop()
        fake.stop()
    assert space.run("doctor").stdout.startswith("ok: ")


def test_workers_stop_when_their_supervisor_is_killed(tmp_path: Path) -> None:
    """kill -9 of the main process must not leave orphaned workers serving (and spinning)."""
    port = free_port()
    space = make_workspace(tmp_path, server={"port": port})
    server = ServerProcess(space.config, port).start("--workers", "2")
    workers = [int(pid) for pid in server.wait_for_log(r"Worker ready \[(\d+)\]", 2)]
    assert server.process is not None
    children = [
        int(pid)
        for pid in Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children")
        .read_text()
        .split()
    ]
    server.process.kill()
    server.process.wait(10)
    deadline = time.monotonic() + 20
    try:
        while any(pid_runs(pid) for pid in workers):
            assert time.monotonic() < deadline, f"orphaned workers run on:\n{server.log_text()}"
            time.sleep(0.1)
        assert "Worker complete" in server.log_text()  # they stopped gracefully
    finally:  # end what this test started (Sanic's idle manager process outlives a kill -9)
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_sigterm_right_after_the_first_healthz_answer_stops_a_single_process(
    tmp_path: Path,
) -> None:
    """The first `/healthz` answer comes while the process still starts (uvloop dropped a
    signal that came before its loop ran again: one stop in five was lost, the process served
    on). Asked as soon as it answers, every stop is carried out."""
    for attempt in range(12):
        server = launched(tmp_path / str(attempt), workers=1)
        try:
            first_healthz_answer(server)
            assert server.stop(timeout=10) == 0, server.log_text()
        except BaseException:
            server.kill()
            raise


def first_healthz_answer(server: ServerProcess, wait: float = 30) -> None:
    """Ask `/healthz` every 2 ms until it answers, on a bare socket (the stop that follows
    lands within microseconds of the answer, not after an HTTP client's bookkeeping)."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        address = ("127.0.0.1", server.port)
        with contextlib.suppress(OSError), socket.create_connection(address, 1) as connection:
            connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: box\r\n\r\n")
            if connection.recv(64).startswith(b"HTTP/1.1 200"):
                return
        time.sleep(0.002)
    raise AssertionError(f"no /healthz answer in {wait} s:\n{server.log_text()}")


PIPELINED = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * 200


def _pipeline_until(port: int, stop: threading.Event) -> None:
    """Keep the server's loop busy in request code: 200 requests a write on one connection."""
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(5)
        while not stop.is_set():
            sock.sendall(PIPELINED)
            answered = 0
            while answered < 200:
                data = sock.recv(1 << 20)
                if not data:
                    return
                answered += data.count(b"HTTP/1.1 ")


def test_the_lines_a_sigterm_writes_name_no_request(tmp_path: Path) -> None:
    """SIGTERM's Python handler runs inside whatever the loop was running, often a request's
    task: the stop it queued took that task's context, so "Received signal SIGTERM. Shutting
    down." (and whatever the stop logged after it) carried some request's `request_id`, and a
    shipper filtering by that id found the shutdown in one user's request."""
    port = free_port()
    space = make_workspace(tmp_path, server={"port": port}, log={"format": "json"})
    server = ServerProcess(space.config, port).start()
    stop = threading.Event()
    load = [threading.Thread(target=_pipeline_until, args=(port, stop)) for _ in range(4)]
    try:
        for thread in load:
            thread.start()
        time.sleep(0.5)
        assert server.process is not None
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(30) == 0
    finally:
        stop.set()
        for thread in load:
            thread.join()
        server.kill()
    lines = [json.loads(line) for line in server.log_text().splitlines() if line[:1] == "{"]
    received = [line for line in lines if line["message"].startswith("Received signal SIGTERM")]
    assert len(received) == 1, lines[-5:]
    named = [line for line in lines if line["logger"] != "codelace_box.access"
             and "request_id" in line]  # fmt: skip
    assert named == []
