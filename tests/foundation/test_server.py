"""`codelace-box serve` as a real process on a free port: no config file needed, the OpenAI
error envelope and x-request-id on every response, config errors as one line, SIGTERM."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.foundation.conftest import make_workspace, one_error_line
from tests.support import REPO_ROOT, ServerProcess, cli_env, free_port, run_cli

pytestmark = pytest.mark.timeout(90)
REQUEST_ID = re.compile(r"^req_[0-9a-f]{24}$")
MAX_BODY = 4096
JSON_ROUTE = "/api/v1/auth/otp/request"


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the module, with a small body limit."""
    port = free_port()
    space = make_workspace(
        tmp_path_factory.mktemp("srv"), server={"port": port, "max_body_bytes": MAX_BODY}
    )
    server = ServerProcess(space.config, port).start()
    yield server
    assert server.stop() == 0


def assert_envelope(response: httpx.Response, status: int, error_type: str, code: str) -> str:
    """The response is the OpenAI error envelope; returns its message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert REQUEST_ID.match(response.headers["x-request-id"])
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert (error["type"], error["code"]) == (error_type, code)
    assert isinstance(error["message"], str) and error["message"]
    return str(error["message"])


def test_healthz(box: ServerProcess) -> None:
    response = httpx.get(box.base_url + "/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert REQUEST_ID.match(response.headers["x-request-id"])


def test_every_response_has_its_own_request_id(box: ServerProcess) -> None:
    with httpx.Client(base_url=box.base_url) as client:
        responses = [
            client.get("/healthz"),
            client.get("/healthz"),
            client.get("/no/such/route"),
            client.post("/healthz"),
            client.post(JSON_ROUTE, content=b"{oops"),
            client.post(JSON_ROUTE, content=b"x" * (MAX_BODY + 1)),
        ]
    ids = [r.headers.get("x-request-id", "") for r in responses]
    assert all(REQUEST_ID.match(i) for i in ids), ids
    assert len(set(ids)) == len(ids)


def test_a_request_id_the_client_sends_is_replaced_by_the_boxs_own(box: ServerProcess) -> None:
    """As OpenAI and Stripe do: the id in logs and answers is always one the box issued, so a
    client can neither forge another request's id nor smuggle a huge or odd value into them."""
    with httpx.Client(base_url=box.base_url) as client:
        for sent in ("req_0123456789abcdef01234567", "x" * 8000, "a b;\tc"):
            for response in (client.get("/healthz", headers={"x-request-id": sent}),
                             client.get("/nope", headers={"x-request-id": sent})):  # fmt: skip
                assert response.headers.get_list("x-request-id") != [sent]
                assert len(response.headers.get_list("x-request-id")) == 1
                assert REQUEST_ID.match(response.headers["x-request-id"])


def test_unknown_route_is_a_404_envelope(box: ServerProcess) -> None:
    message = assert_envelope(
        httpx.get(box.base_url + "/v2/nothing"), 404, "not_found_error", "not_found"
    )
    assert message == "no route for GET /v2/nothing"


def test_wrong_method_is_a_405_envelope_with_allow(box: ServerProcess) -> None:
    response = httpx.delete(box.base_url + "/healthz")
    assert_envelope(response, 405, "invalid_request_error", "method_not_allowed")
    assert "GET" in response.headers["allow"]


def test_a_body_over_the_limit_is_a_413_envelope(box: ServerProcess) -> None:
    response = httpx.post(
        box.base_url + JSON_ROUTE,
        content=json.dumps({"email": "big@example.com", "pad": "x" * MAX_BODY}),
        headers={"content-type": "application/json"},
    )
    message = assert_envelope(response, 413, "invalid_request_error", "payload_too_large")
    assert message == "request body too large"


def test_a_chunked_body_over_the_limit_is_a_413_envelope(box: ServerProcess) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(8):
            yield b"x" * 1024

    response = httpx.post(box.base_url + JSON_ROUTE, content=chunks())
    assert_envelope(response, 413, "invalid_request_error", "payload_too_large")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b'{"email": ', "malformed JSON body"),
        (b"\xff\xfe not utf-8", "malformed JSON body"),
        (b'["a@b.c"]', "must be a JSON object"),
        (b"", "must be a JSON object"),
    ],
)
def test_malformed_json_is_a_400_envelope(box: ServerProcess, body: bytes, fragment: str) -> None:
    response = httpx.post(
        box.base_url + JSON_ROUTE, content=body, headers={"content-type": "application/json"}
    )
    message = assert_envelope(response, 400, "invalid_request_error", "invalid_json")
    assert fragment in message


BOOM_SERVER = """
import sys
from sanic import Sanic
from codelace_box.config import load_config
from codelace_box.server import configure_logging, create_app, prepare_database

config = load_config(sys.argv[1])
configure_logging()
prepare_database(config)
app = create_app(config)

@app.get("/boom")
async def boom(request):
    raise RuntimeError("password=hunter2 in /srv/secret/path")

app.prepare(host="127.0.0.1", port=config.server.port, single_process=True, motd=False)
Sanic.serve_single(primary=app)
"""


def test_an_unexpected_exception_is_a_500_envelope_with_internals_hidden(
    tmp_path: Path,
) -> None:
    """The real app (create_app) with one extra route that raises, served for real."""
    port = free_port()
    space = make_workspace(tmp_path, server={"port": port})
    server = ServerProcess(space.config, port)
    server.program = (sys.executable, "-c", BOOM_SERVER, str(space.config))
    log = server.log_path.open("ab")
    server.process = subprocess.Popen(
        [*server.program], stdout=log, stderr=subprocess.STDOUT, env=cli_env(), cwd=REPO_ROOT
    )
    log.close()
    try:
        server.wait_healthy(30)
        response = httpx.get(server.base_url + "/boom")
        message = assert_envelope(response, 500, "server_error", "internal_error")
        request_id = response.headers["x-request-id"]
        assert message == f"internal error (request {request_id})"
        for leak in ("hunter2", "secret", "RuntimeError", "Traceback", "/srv"):
            assert leak not in response.text
        # the operator can find it (waited for: the log line may land just after the answer)
        server.wait_for_log(re.escape(f"unhandled error in request {request_id}"), wait=10)
        logged = server.log_text()
        assert f"unhandled error in request {request_id}" in logged
        assert "RuntimeError" in logged
    finally:
        assert server.stop() == 0


def test_serve_without_any_config_file_creates_data_in_the_working_directory(
    tmp_path: Path,
) -> None:
    port = free_port()
    log = (tmp_path.parent / f"{tmp_path.name}-serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "codelace_box", "serve", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=cli_env(),
        cwd=tmp_path,
    )
    server = ServerProcess(tmp_path / "codelace.toml", port)
    server.process = process
    try:
        server.wait_healthy(30)
        assert httpx.get(server.base_url + "/healthz").json() == {"status": "ok"}
        assert not (tmp_path / "codelace.toml").exists()
        assert (tmp_path / "data" / "codelace.db").is_file()
        assert (tmp_path / "data" / "secret_key").stat().st_mode & 0o077 == 0
    finally:
        assert server.stop() == 0
        log.close()


@pytest.mark.parametrize(
    ("toml", "env", "expected"),
    [
        ('[server]\nport = "x"\n', {}, "server.port must be an integer, got 'x'"),
        ('[auth]\nsignup = "nope"\n', {}, "auth.signup must be one of"),
        ("[server]\nhost_name = 1\n", {}, "unknown key server.host_name"),
        ("", {"CODELACE_SERVER_PORT": "x"}, "env CODELACE_SERVER_PORT: server.port"),
        ("", {"CODELACE_STRIPE_SECRET_KEY": "sk_live_LEAK", "CODELACE_SERVER_WORKERS": "0"},
         "server.workers must be an integer from 1 to 64"),
    ],
)  # fmt: skip
def test_a_bad_config_stops_serve_with_one_line(
    tmp_path: Path, toml: str, env: dict[str, str], expected: str
) -> None:
    config = tmp_path / "codelace.toml"
    config.write_text(toml)
    started = time.monotonic()
    result = run_cli(config, "serve", env=env, timeout=30)
    assert result.returncode == 1
    line = one_error_line(result.stderr)
    assert expected in line
    if not env:
        assert line.startswith(f"error: {config}: ")
    assert "LEAK" not in result.stderr + result.stdout
    assert time.monotonic() - started < 15
    assert not (tmp_path / "data").exists()  # stopped before touching anything


def test_a_taken_port_stops_serve_with_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(None, "serve", "--port", str(port), cwd=tmp_path, timeout=30)
    assert result.returncode == 1
    assert one_error_line(result.stderr) == (
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use"
    )


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
            httpx.get(base_url + "/healthz", timeout=2)
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
        time.sleep(0.3)
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
    assert time.monotonic() - stopped_at < 5  # not the whole keep-alive grace period


def test_two_workers_serve_and_stop_cleanly(tmp_path: Path) -> None:
    port = free_port()
    space = make_workspace(tmp_path, server={"port": port})
    server = ServerProcess(space.config, port).start("--workers", "2")
    try:

        def call(number: int) -> Any:
            if number % 2:
                return httpx.get(server.base_url + "/healthz").status_code
            response = httpx.post(
                server.base_url + JSON_ROUTE, json={"email": f"w{number}@example.com"}
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
        port = free_port()
        space = make_workspace(tmp_path / str(attempt), server={"port": port})
        server = ServerProcess(space.config, port).launch("--workers", "2")
        assert server.process is not None
        try:
            server.wait_for_log(pattern, count)
            stopped_at = time.monotonic()
            assert server.stop() == 0, server.log_text()
        except BaseException:
            server.kill()  # not left running behind the failed test
            raise
        # A worker that lost the signal while starting is signalled again after 3 s.
        assert time.monotonic() - stopped_at < 15, server.log_text()
        # (a worker still starting may print a KeyboardInterrupt: it had served nothing)
        assert "Experienced exception" not in server.log_text()
        assert not re.search(r"^error: ", server.log_text(), re.MULTILINE)  # the CLI's own
        started = re.findall(r"Starting worker \[(\d+)\]", server.log_text())
        assert all(not pid_runs(int(pid)) for pid in started), server.log_text()


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
    client = openai.OpenAI(base_url=server.base_url + "/v1", api_key=key, max_retries=0)
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


def test_sigterm_waits_for_a_call_its_client_left_and_charges_it(tmp_path: Path) -> None:
    """A non-streaming call the client gave up on still runs upstream (the operator pays the
    provider for it): a stop lets it finish and charges it before the process exits."""
    from tests.fakes.openai_upstream import FakeOpenAI, Reply

    fake = FakeOpenAI().start()
    space, port, key = metered_workspace(tmp_path, fake.base_url, "leaver@example.com")
    server = ServerProcess(space.config, port).start()
    fake.push(Reply(delay_before=1.5, prompt_tokens=7, completion_tokens=8))
    body = {"model": "fake/m", "messages": [{"role": "user", "content": "hi"}]}
    headers = {"authorization": f"Bearer {key}"}
    try:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(server.base_url + "/v1/chat/completions", json=body, headers=headers,
                       timeout=0.5)  # fmt: skip
        assert server.stop() == 0, server.log_text()
    finally:
        server.stop()
        fake.stop()
    assert space.sql("SELECT status, cost_nanos FROM usage_record") == [("abandoned", 23_000)]
    assert space.json("users", "show", "leaver@example.com")["credit_balance_usd"] == 0.999977
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
                          headers=headers, timeout=10) as answer:  # fmt: skip
            assert answer.status_code == 200, answer.read()
            lines = answer.iter_lines()  # kept: a dropped iterator closes the connection
            next(lines)  # the call is in flight: its hold is taken
            [(owner, held)] = space.sql("SELECT owner, amount_nanos FROM hold")
            assert held > 0
            os.kill(int(owner.rpartition(":")[2]), signal.SIGKILL)
        deadline = time.monotonic() + 10
        while space.sql("SELECT COUNT(*) FROM hold") != [(0,)]:
            assert time.monotonic() < deadline, server.log_text()
            time.sleep(0.05)
        assert space.sql('SELECT held_nanos FROM "user"') == [(0,)]
        assert "released 1 holds of" in server.log_text()
        assert httpx.get(server.base_url + "/healthz").status_code == 200
        killed = owner.rpartition(":")[2]
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
