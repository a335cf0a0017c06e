"""Request bodies of clients the box does not know: many connections at once, each sending a
body up to server.max_body_bytes, without a key (or with one that is no key) or to a sign-in
route, must not take the box's memory. A body is held in memory whole, so each such body was
read into the box before the key was looked at: a few hundred connections of anyone on the
network took gigabytes, until the box was killed for its memory (its holds left to the next
start, its streams cut). Now an inference route looks at the key before it reads the body,
and a route that takes no API key reads at most SMALL_BODY_BYTES."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.openai_upstream import FakeOpenAI
from tests.foundation.conftest import Workspace
from tests.foundation.test_disk_trouble import metered_box
from tests.support import TLS, ServerProcess

pytestmark = pytest.mark.timeout(120)
BODY = 8 * 1024 * 1024  # under the default server.max_body_bytes (10 MiB)
CLIENTS = 6  # per kind of request below


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ServerProcess, Workspace, str]]:
    fake = FakeOpenAI().start()
    space, port, key = metered_box(tmp_path_factory.mktemp("bodies"), fake.base_url)
    server = ServerProcess(space.config, port).start()
    yield server, space, key
    assert server.stop() == 0
    fake.stop()


@pytest.fixture
def box(served: tuple[ServerProcess, Workspace, str]) -> tuple[ServerProcess, str]:
    server, _, key = served
    return server, key


def peak_memory_kib(pid: int) -> int:
    """The process's peak resident memory (VmHWM), KiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    [line] = [line for line in status.splitlines() if line.startswith("VmHWM:")]
    return int(line.split()[1])


def send_big_body(port: int, route: str, headers: str, answers: list[bytes]) -> None:
    """A request declaring a BODY-byte body, sent whole (as far as the box reads it), then
    its answer (kept in `answers`)."""
    start = b'{"model":"fake/m","messages":[{"role":"user","content":"'
    with socket.create_connection(("127.0.0.1", port)) as client:
        client.settimeout(20)
        head = f"POST {route} HTTP/1.1\r\nhost: box\r\n{headers}content-type: application/json\r\n"
        client.sendall(f"{head}content-length: {BODY}\r\n\r\n".encode() + start)
        with contextlib.suppress(OSError):  # the box answered and closed, not reading it all
            client.sendall(b"a" * (BODY - len(start)))
        answer = b""
        try:
            while b"\r\n\r\n" not in answer and (data := client.recv(65536)):
                answer += data
        except OSError:
            pass
        answers.append(answer)


def test_bodies_of_unknown_clients_do_not_take_the_box_s_memory(
    box: tuple[ServerProcess, str],
) -> None:
    server, _ = box
    assert server.process is not None
    before = peak_memory_kib(server.process.pid)
    kinds = [
        ("/v1/chat/completions", ""),
        ("/v1/chat/completions", "authorization: Bearer cl_" + "x" * 40 + "\r\n"),
        ("/v1/messages", "x-api-key: cl_" + "y" * 40 + "\r\n"),
        ("/api/v1/auth/otp/request", ""),
        ("/portal/api/signin/code", ""),
    ]
    answers: list[bytes] = []
    clients = [
        threading.Thread(target=send_big_body, args=(server.port, route, headers, answers))
        for route, headers in kinds
        for _ in range(CLIENTS)
    ]
    for client in clients:
        client.start()
    for client in clients:
        client.join()
    grown_mib = (peak_memory_kib(server.process.pid) - before) // 1024
    statuses = sorted({answer.split(b" ", 2)[1].decode() for answer in answers if answer})
    assert grown_mib < 40, f"the box's peak memory grew by {grown_mib} MiB"
    assert len(answers) == len(clients)
    assert statuses == ["401", "413"], answers


KEYED = ("/v1/chat/completions", "/v1/responses", "/v1/embeddings", "/v1/messages",
         "/v1/messages/count_tokens")  # fmt: skip


@pytest.mark.parametrize("route", KEYED)
def test_a_known_key_still_sends_a_large_body(box: tuple[ServerProcess, str], route: str) -> None:
    """The key looked at first, the body is read as before: up to server.max_body_bytes."""
    server, key = box
    answers: list[bytes] = []
    header = "x-api-key:" if route.startswith("/v1/messages") else "authorization: Bearer"
    send_big_body(server.port, route, f"{header} {key}\r\n", answers)
    [answer] = answers
    assert answer.split(b" ", 2)[1] == b"400", answer  # the body sent is no whole JSON
    assert b"x-request-id: req_" in answer


def test_a_sign_in_routes_own_limit_is_said_without_the_setting(
    box: tuple[ServerProcess, str],
) -> None:
    """A sign-in route takes at most 256 KiB whatever server.max_body_bytes says (10 MiB
    here): its 413 says that limit, and names no setting that would not change it."""
    server, _ = box
    answer = httpx.post(
        server.base_url + "/api/v1/auth/otp/request", content=b"x" * 300_000, verify=TLS
    )
    assert answer.status_code == 413, answer.text
    message = answer.json()["error"]["message"]
    assert "262,144 bytes" in message and "max_body_bytes" not in message, message


def test_a_refused_key_before_the_body_is_the_usual_401(box: tuple[ServerProcess, str]) -> None:
    """The early refusal has the envelope, the request id and the access line of any 401."""
    server, _ = box
    with socket.create_connection(("127.0.0.1", server.port)) as client:
        client.settimeout(10)
        head = b"POST /v1/chat/completions HTTP/1.1\r\nhost: box\r\n"
        client.sendall(head + b"content-type: application/json\r\ncontent-length: 2\r\n\r\n{}")
        answer = b""
        while b"}}" not in answer and (data := client.recv(65536)):
            answer += data
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 401"), answer
    assert json.loads(body)["error"]["code"] == "invalid_api_key"
    [request_id] = [line.split(b": ")[1] for line in head.split(b"\r\n")
                    if line.lower().startswith(b"x-request-id")]  # fmt: skip
    server.wait_for_log(f"POST /v1/chat/completions 401 .* request={request_id.decode()}")


@pytest.mark.parametrize("route", ["/v1/chat/completions", "/v1/messages"])
def test_a_key_revoked_while_its_body_arrives_is_refused(
    served: tuple[ServerProcess, Workspace, str], route: str
) -> None:
    """The key is looked at before the body is read; a body may take long to arrive (a
    slow link, or on purpose: MIN_BODY_RATE lets 10 MiB take hours). A key revoked meanwhile
    (leaked, its owner revoking it) must be refused once the body is in, as the SPEC's
    revocation within 1 s asks: the look before the body is not the word on the call."""
    server, space, _ = served
    key = space.run("keys", "create", "full@example.com", "--name", "leaked").stdout.strip()
    [key_id] = [k["id"] for k in json.loads(space.run("keys", "list", "full@example.com",
                "--json").stdout) if k["name"] == "leaked"]  # fmt: skip
    header = "x-api-key:" if route == "/v1/messages" else "authorization: Bearer"
    body = json.dumps({"model": "fake/m", "max_tokens": 8,
                       "messages": [{"role": "user", "content": "hi"}]}).encode()  # fmt: skip
    with socket.create_connection(("127.0.0.1", server.port)) as client:
        client.settimeout(20)
        head = f"POST {route} HTTP/1.1\r\nhost: box\r\n{header} {key}\r\n"
        head += f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
        client.sendall(head.encode() + body[:5])
        time.sleep(0.3)  # the box has looked at the key
        space.run("keys", "revoke", key_id)
        time.sleep(1.2)  # the SPEC's second, and some
        client.sendall(body[5:])
        answer = b""
        while b"\r\n\r\n" not in answer and (data := client.recv(65536)):
            answer += data
    assert answer.startswith(b"HTTP/1.1 401"), answer
    [request_id] = re.findall(rb"x-request-id: (req_\w+)", answer)
    server.wait_for_log(f"POST {route} 401 .* user=- key=.* request={request_id.decode()}")


STORED = [("POST", "/v1/responses/resp_1/cancel"), ("DELETE", "/v1/responses/resp_1"),
          ("GET", "/v1/responses/resp_1/input_items")]  # fmt: skip


@pytest.mark.parametrize(("method", "route"), STORED)
def test_a_stored_response_route_looks_at_the_key_before_a_large_body(
    box: tuple[ServerProcess, str], method: str, route: str
) -> None:
    """The stored-response routes take a key like every other keyed /v1 route, but were read
    as key-less routes: a body over 256 KiB without a key got the 413 of a sign-in route before
    its 401. The key is looked at first, as on the inference routes."""
    server, _ = box
    answer = httpx.request(method, server.base_url + route, content=b"x" * 300_000, verify=TLS)
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"]["code"] == "invalid_api_key", answer.text
