"""A serving box out of file descriptors (its hard RLIMIT_NOFILE reached by idle client
connections, as a container's `--ulimit nofile=64:64` lets happen): it stays up, its log says
so once rather than several lines a second, and it serves and charges as before once the
connections are gone."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.fakes.openai_upstream import FakeOpenAI
from tests.foundation.test_disk_trouble import metered_box
from tests.support import TLS, ServerProcess, eventually

pytestmark = pytest.mark.timeout(120)
OPEN_FILES = 64  # the box's hard limit: it cannot raise its soft one past it


def _fill_descriptors(port: int) -> list[socket.socket]:
    """Idle connections past the box's descriptor limit (it accepts until it has none left)."""
    return [socket.create_connection(("127.0.0.1", port)) for _ in range(OPEN_FILES + 16)]


def test_out_of_descriptors_the_log_says_so_once_and_the_box_goes_on(tmp_path: Path) -> None:
    """The WAL checkpoint thread (every 0.25 s) could not open the database without a free
    descriptor and logged 'the WAL checkpoint failed: unable to open database file' four
    times a second for as long as it lasted: a log filling its disk. Now the first failure is
    one line, and the line after names how long it lasted once checkpoints work again."""
    fake = FakeOpenAI().start()
    space, port, key = metered_box(tmp_path / "box", fake.base_url)
    server = ServerProcess(space.config, port)
    server.program = ("prlimit", f"--nofile={OPEN_FILES}:{OPEN_FILES}", *ServerProcess.program)
    headers = {"authorization": f"Bearer {key}"}
    body = {"model": "fake/m", "messages": [{"role": "user", "content": "hi"}]}
    try:
        server.start()
        idle = _fill_descriptors(port)
        time.sleep(3)  # a dozen checkpoint ticks without a descriptor
        for connection in idle:
            connection.close()
        server.wait_for_log("the WAL checkpoint works again")
        answer = httpx.post(server.base_url + "/v1/chat/completions", json=body,
                            headers=headers, timeout=30, verify=TLS)  # fmt: skip
        assert answer.status_code == 200, answer.text
    finally:
        assert server.stop() == 0
        fake.stop()
    log = server.log_text()
    assert "Traceback" not in log, log[-3000:]
    assert log.count("the WAL checkpoint failed") == 1, log[-3000:]
    assert "the WAL checkpoint failed: unable to open database file (retrying" in log
    assert space.run("doctor").stdout.startswith("ok: ")
    assert space.sql('SELECT held_nanos FROM "user"') == [(0,)]


def _open_descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_out_of_descriptors_a_call_is_the_boxs_503_not_the_providers_502(
    tmp_path: Path, host: str
) -> None:
    """A call that cannot open its upstream connection because the box has no descriptor left
    (EMFILE) was a 502 `upstream_unreachable` ("cannot connect to the upstream (Too many open
    files)"), counted and logged as the provider's error: the box's own trouble, not the
    provider's. Now a 503 saying the gateway is out of resources; the provider's error count
    and its keys are untouched, and the next call, descriptors free again, is served. An
    upstream named by its host name fails earlier, in the name's lookup: the same 503."""
    fake = FakeOpenAI().start()
    upstream = fake.base_url.replace("127.0.0.1", host)
    space, port, key = metered_box(tmp_path / "box", upstream)
    space.run("providers", "key-add", "fake", "--key", "sk-fake-upstream-key-0002")
    server = ServerProcess(space.config, port)
    server.program = ("prlimit", f"--nofile={OPEN_FILES}:{OPEN_FILES}", *ServerProcess.program)
    headers = {"authorization": f"Bearer {key}"}
    body = {"model": "fake/m", "messages": [{"role": "user", "content": "hi"}]}
    try:
        server.start()
        assert server.process is not None
        with httpx.Client(
            base_url=server.base_url, headers=headers, timeout=30, verify=TLS
        ) as client:
            assert client.get("/healthz").status_code == 200  # its connection stays open
            in_use = _open_descriptors(server.process.pid)
            idle = _fill_descriptors(port)
            deadline = time.monotonic() + 20
            while _open_descriptors(server.process.pid) < OPEN_FILES:
                assert time.monotonic() < deadline, "the box never ran out of descriptors"
                time.sleep(0.05)
            answer = client.post("/v1/chat/completions", json=body)
        for connection in idle:
            connection.close()
        # A connection made while the box has no descriptor left is reset (libuv sheds its
        # pending connections on EMFILE), as it should be: the next call waits for the closes.
        pid = server.process.pid
        eventually(lambda: _open_descriptors(pid) <= in_use + 2, "the idle connections closed")
        assert answer.status_code == 503, answer.text
        error = answer.json()["error"]
        assert error["code"] == "out_of_resources", error
        assert "gateway is out of resources" in error["message"], error
        assert fake.requests == []
        metrics = httpx.get(server.base_url + "/metrics", timeout=30, verify=TLS).text
        assert "codelace_upstream_errors_total{" not in metrics, metrics
        assert httpx.post(server.base_url + "/v1/chat/completions", json=body, headers=headers,
                          timeout=30, verify=TLS).status_code == 200  # fmt: skip
    finally:
        assert server.stop() == 0
        fake.stop()
    assert "upstream error:" not in server.log_text(), server.log_text()[-3000:]
    assert space.sql("SELECT failing, parked FROM provider_key") == [(0, 0), (0, 0)]
