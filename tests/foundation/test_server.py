"""`codelace-box serve` as a real process on a free port: no config file needed, the OpenAI
error envelope and x-request-id on every response, config errors as one line. How it stops
(SIGTERM) and its worker processes: test_server_stopping.py."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.foundation.conftest import make_workspace, one_error_line
from tests.support import (
    HEALTHY_WAIT_SEC,
    REPO_ROOT,
    TLS,
    ServerProcess,
    cli_env,
    free_port,
    run_cli,
)

pytestmark = pytest.mark.timeout(90)
REQUEST_ID = re.compile(r"^req_[0-9a-f]{24}$")
MAX_BODY = 4096
JSON_ROUTE = "/api/v1/auth/otp/request"
EX_CONFIG = 78  # sysexits.h: the README's unit has RestartPreventExitStatus=78


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
    response = httpx.get(box.base_url + "/healthz", verify=TLS)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert REQUEST_ID.match(response.headers["x-request-id"])


def test_every_response_has_its_own_request_id(box: ServerProcess) -> None:
    with httpx.Client(base_url=box.base_url, verify=TLS) as client:
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
    with httpx.Client(base_url=box.base_url, verify=TLS) as client:
        for sent in ("req_0123456789abcdef01234567", "x" * 8000, "a b;\tc"):
            for response in (client.get("/healthz", headers={"x-request-id": sent}),
                             client.get("/nope", headers={"x-request-id": sent})):  # fmt: skip
                assert response.headers.get_list("x-request-id") != [sent]
                assert len(response.headers.get_list("x-request-id")) == 1
                assert REQUEST_ID.match(response.headers["x-request-id"])


def test_unknown_route_is_a_404_envelope(box: ServerProcess) -> None:
    message = assert_envelope(
        httpx.get(box.base_url + "/v2/nothing", verify=TLS), 404, "not_found_error", "not_found"
    )
    assert message == "no route for GET /v2/nothing"


def test_a_key_pasted_into_a_path_is_masked_in_the_404(box: ServerProcess) -> None:
    """A key pasted where the path goes (a base URL built from it, `/v1/cl_...`) is not quoted
    back whole: error messages mask secrets (a proxy or client log keeps them)."""
    key = "cl_" + "Ab3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF"
    response = httpx.get(f"{box.base_url}/v1/{key}/models", verify=TLS)
    message = assert_envelope(response, 404, "not_found_error", "not_found")
    assert (
        key not in message and key[-4:] in message and message.startswith("no route for GET /v1/")
    )


@pytest.mark.parametrize("method", ["GET", "PUT", "OPTIONS"])
def test_a_key_pasted_into_a_path_is_masked_in_the_405(box: ServerProcess, method: str) -> None:
    """The same key in a path that is a route for other methods (the key route's
    `/api/v1/auth/key/<key_id>`, which takes PATCH and DELETE: a GET to look a key up) is
    masked in the 405 too (Sanic's own words quoted the URL)."""
    key = "cl_" + "Ab3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF"
    response = httpx.request(method, f"{box.base_url}/api/v1/auth/key/{key}", verify=TLS)
    message = assert_envelope(response, 405, "invalid_request_error", "method_not_allowed")
    assert key not in message and key[-4:] in message and "/api/v1/auth/key/" in message


@pytest.mark.parametrize(
    ("path", "hint"),
    [
        ("/chat/completions", "under /v1: a client's base URL ends in /v1"),
        ("/embeddings", "under /v1: a client's base URL ends in /v1"),
        ("/v1/v1/messages", "/v1 twice: a base URL that ends in /v1 where the client adds it"),
    ],
)
def test_a_route_missing_or_doubling_v1_says_so(box: ServerProcess, path: str, hint: str) -> None:
    """The commonest setup mistake: the openai SDK given the box's address without /v1 (it
    posts to /chat/completions), Claude Code or the anthropic SDK given it with /v1 (they post
    to /v1/v1/messages). A bare "no route" sent users looking at their model names."""
    response = httpx.post(box.base_url + path, json={}, verify=TLS)
    message = assert_envelope(response, 404, "not_found_error", "not_found")
    assert message.startswith(f"no route for POST {path} (") and hint in message


def test_wrong_method_is_a_405_envelope_with_allow(box: ServerProcess) -> None:
    response = httpx.delete(box.base_url + "/healthz", verify=TLS)
    assert_envelope(response, 405, "invalid_request_error", "method_not_allowed")
    assert "GET" in response.headers["allow"]


def test_a_body_over_the_limit_is_a_413_envelope(box: ServerProcess) -> None:
    response = httpx.post(
        box.base_url + JSON_ROUTE,
        content=json.dumps({"email": "big@example.com", "pad": "x" * MAX_BODY}),
        headers={"content-type": "application/json"},
        verify=TLS,
    )
    message = assert_envelope(response, 413, "invalid_request_error", "payload_too_large")
    assert message == "request body too large: this box takes at most 4,096 bytes" + (
        " (server.max_body_bytes)"
    )


def test_a_chunked_body_over_the_limit_is_a_413_envelope(box: ServerProcess) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(8):
            yield b"x" * 1024

    response = httpx.post(box.base_url + JSON_ROUTE, content=chunks(), verify=TLS)
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
        box.base_url + JSON_ROUTE,
        content=body,
        headers={"content-type": "application/json"},
        verify=TLS,
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
        server.wait_healthy(HEALTHY_WAIT_SEC)
        response = httpx.get(server.base_url + "/boom", verify=TLS)
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
        server.wait_healthy(HEALTHY_WAIT_SEC)
        assert httpx.get(server.base_url + "/healthz", verify=TLS).json() == {"status": "ok"}
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
        ("[server]\nport = \n", {}, "not valid TOML"),
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
    """A configuration error exits 78 (EX_CONFIG), not 1: the README's systemd unit restarts
    on failure, and a bad config exiting 1 was started again every 2 s, for ever, its line
    flooding the journal; RestartPreventExitStatus=78 there stops that."""
    config = tmp_path / "codelace.toml"
    config.write_text(toml)
    started = time.monotonic()
    result = run_cli(config, "serve", env=env, timeout=30)
    assert result.returncode == EX_CONFIG, result.stderr
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
    assert result.returncode == 1  # not EX_CONFIG: it may pass, so systemd starts it again
    assert one_error_line(result.stderr) == (
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use (another program "
        "listens there, another codelace-box serve?: stop it, or listen on another port with "
        "--port or server.port)"
    )


def test_a_database_not_reachable_stops_serve_with_1_not_the_config_status(
    tmp_path: Path,
) -> None:
    """PostgreSQL down (nothing listens at database.url) may pass by itself: exit 1, which
    systemd's RestartPreventExitStatus=78 leaves to Restart=on-failure (started again)."""
    closed = free_port()  # nothing listens there
    env = {"CODELACE_DATABASE_URL": f"postgresql://box@127.0.0.1:{closed}/box",
           "CODELACE_SERVER_SECRET_KEY": "s" * 40}  # fmt: skip
    result = run_cli(None, "serve", "--port", str(free_port()), env=env, cwd=tmp_path, timeout=30)
    assert result.returncode == 1, result.stderr
    line = one_error_line(result.stderr)
    assert line.startswith(f"error: database.url postgresql://box@127.0.0.1:{closed}/box: "), line
    assert "cannot open the database" in line, line


@pytest.mark.parametrize(
    ("query", "said"),
    [("?bogus_option=1", 'invalid URI query parameter: "bogus_option"'),
     ("?sslmode=bogus", 'invalid sslmode value: "bogus"'),
     ("?port=notaport", 'invalid integer value "notaport" for connection option "port"')],
)  # fmt: skip
def test_a_database_url_libpq_cannot_read_stops_serve_with_the_config_status(
    tmp_path: Path, query: str, said: str
) -> None:
    """A database.url whose options libpq refuses before connecting (an unknown option, a bad
    sslmode, a port that is no number) is a configuration error no restart mends: 78, not 1
    (it was 1, and systemd started it again every 2 s for ever)."""
    url = f"postgresql://box:LEAKpw@127.0.0.1:{free_port()}/box{query}"
    env = {"CODELACE_DATABASE_URL": url, "CODELACE_SERVER_SECRET_KEY": "s" * 40}
    result = run_cli(None, "serve", "--port", str(free_port()), env=env, cwd=tmp_path, timeout=30)
    assert result.returncode == EX_CONFIG, result.stderr
    line = one_error_line(result.stderr)
    assert "cannot open the database" in line and said in line, line
    assert "LEAK" not in result.stderr + result.stdout


def test_an_address_not_of_this_machine_stops_serve_saying_what_to_set(tmp_path: Path) -> None:
    """server.host an address no interface of this machine has (a typo, the public address of
    a NAT'd VM) said only the kernel's "Cannot assign requested address"."""
    port = str(free_port())
    result = run_cli(
        None, "serve", "--host", "192.0.2.7", "--port", port, cwd=tmp_path, timeout=30
    )  # 192.0.2.0/24: TEST-NET-1, documentation only, no machine's
    assert result.returncode == 1
    assert one_error_line(result.stderr) == (
        f"error: cannot listen on 192.0.2.7:{port}: Cannot assign requested address (no "
        "network interface of this machine has that address: set server.host or --host to one "
        "it has, such as 127.0.0.1)"
    )


@pytest.mark.parametrize(
    "env",
    [{"CODELACE_DATABASE_PATH": ":memory:"}, {"CODELACE_DATABASE_URL": "sqlite:///:memory:"}],
)
def test_serve_on_a_database_in_memory_stops_with_one_line(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """database.path ":memory:" (no config file, so not a file named so beside one): `serve`
    migrated a database in memory, closed it, and its worker opened another, empty one; it
    said it served, /healthz answered ok, and every request was a 500 (`no such table`), the
    upkeep's tracebacks in the log, anything written lost at the stop."""
    port = str(free_port())
    result = run_cli(None, "serve", "--port", port, env=env, cwd=tmp_path, timeout=30)
    assert result.returncode == EX_CONFIG, result.stderr
    assert one_error_line(result.stderr) == (
        "error: database.path :memory: is a database in memory, which serve cannot share with "
        "its workers and loses at its stop: name a file (the default is data/codelace.db)"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_bracketed_ipv6_host_is_served(tmp_path: Path) -> None:
    """server.host = "[::1]" (an IPv6 address as a URL writes it, which server.host takes and
    base_url already reads as bracketed) failed at start as "cannot listen on [::1]:PORT: Name
    or service not known". The box listens on ::1, as `host = "::1"` does."""
    port = free_port()
    space = make_workspace(tmp_path, server={"host": "[::1]", "port": port})
    server = ServerProcess(space.config, port)
    server.base_url = f"http://[::1]:{port}"
    try:
        server.start()
        assert httpx.get(f"{server.base_url}/healthz", timeout=5, verify=TLS).status_code == 200
        assert server.stop() == 0
    finally:
        server.kill()
