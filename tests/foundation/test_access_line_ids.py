"""Every access line names a request id (SPEC: "every request line carries its request id"),
also that of a request Sanic ended before the box's middleware ran: a client that left while
its head was still arriving (a 499) was logged `request=None`."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from tests.foundation.conftest import make_workspace
from tests.support import ServerProcess, free_port

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    port = free_port()
    space = make_workspace(tmp_path_factory.mktemp("ids"), server={"port": port})
    server = ServerProcess(space.config, port).start()
    yield server
    assert server.stop() == 0


def test_a_client_that_left_mid_head_is_logged_with_a_request_id(box: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", box.port)) as client:
        client.sendall(b"GET /healthz HTTP/1.1\r\nHost: box\r\n")
        time.sleep(0.3)  # the head's first bytes read
    [line] = box.wait_for_log(r".* 499 .*")
    assert "request=None" not in line, line
    assert line.split("request=")[1].strip().startswith("req_"), line
