"""A stop while a client's request head is still arriving (a slow or stalled client, slowloris):
no request of it has begun, so its connection is closed at once, like an idle one. Sanic took
it for a request in flight and held the stop for its whole window (30 s), then logged a
traceback (`protocol.connection_task uncaught ... 'NoneType' object has no attribute 'method'`).
Requests in flight still finish (test_server_stopping.py)."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import pytest

from tests.foundation.conftest import make_workspace
from tests.ports import until_read
from tests.support import ServerProcess, free_port

pytestmark = pytest.mark.timeout(90)


def test_a_stop_closes_connections_whose_head_is_still_arriving(tmp_path: Path) -> None:
    port = free_port()
    space = make_workspace(tmp_path, server={"port": port})
    server = ServerProcess(space.config, port).start()
    stalled = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
    try:
        for n, connection in enumerate(stalled):
            connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: box\r\nX-Part: %d\r\n" % n)
        until_read(port)  # the heads' first bytes read
        assert server.process is not None
        started = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(25) == 0
        assert time.monotonic() - started < 10  # not the stop's 30 s window
        for connection in stalled:
            connection.settimeout(5)
            assert connection.recv(65536) == b""  # closed, nothing sent
    except BaseException:
        server.kill()
        raise
    finally:
        for connection in stalled:
            connection.close()
    log = server.log_text()
    assert "Traceback" not in log and "uncaught" not in log, log[-3000:]
