"""A stop's one window (Sanic's GRACEFUL_SHUTDOWN_TIMEOUT, shortened here through the
environment): a stream still running when it ends is cut there, charged what the upstream
sent of it until then (which its client got), and the process exits at the window's end, not
one more window later; the log says what was cut. (test_server_stopping.py: what finishes
within the window.)"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.foundation.test_server_stopping import metered_workspace
from tests.support import ServerProcess

pytestmark = pytest.mark.timeout(90)
WINDOW_SEC = 3  # the stop window of these tests (the product's is 30 s)
PIECE_SEC = 0.05  # one token every 50 ms: 20 a second, 400 in all (20 s, far past the window)
SLACK_TOKENS = 3  # read from the upstream in the instant before the cut, not yet relayed


def read_pieces(response: httpx.Response, received: list[str]) -> None:
    """Count the stream's content pieces until the server cuts it."""
    try:
        for line in response.iter_lines():
            if '"content":" x"' in line:
                received.append(line)
    except httpx.HTTPError:  # the cut: an incomplete chunked body
        pass


@pytest.mark.parametrize("workers", [1, 2])
def test_a_stream_past_the_stop_window_is_relayed_to_its_end_and_charged_what_its_client_got(
    tmp_path: Path, workers: int
) -> None:
    """The box read the upstream on for another window after cutting the client (charged
    twice what the client received, the stop taking two windows)."""
    from tests.fakes.openai_upstream import FakeOpenAI, Reply

    fake = FakeOpenAI().start()
    space, port, key = metered_workspace(tmp_path, fake.base_url, f"cut{workers}@example.com")
    env = {"CODELACE_SANIC_GRACEFUL_SHUTDOWN_TIMEOUT": str(WINDOW_SEC)}
    server = ServerProcess(space.config, port, env=env).start("--workers", str(workers))
    server.wait_for_log(r"Worker ready \[(\d+)\]", workers)
    fake.push(Reply(pieces=[" x"] * 400, piece_delay=PIECE_SEC, prompt_tokens=7))
    body = {"model": "fake/m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    headers = {"authorization": f"Bearer {key}"}
    received: list[str] = []
    try:
        with httpx.stream("POST", server.base_url + "/v1/chat/completions", json=body,
                          headers=headers, timeout=60) as answer:  # fmt: skip
            assert answer.status_code == 200
            reader = threading.Thread(target=read_pieces, args=(answer, received))
            reader.start()
            while not received:
                time.sleep(0.01)
            assert server.process is not None
            server.process.send_signal(signal.SIGTERM)
            stopped_at = time.monotonic()
            assert server.process.wait(30) == 0, server.log_text()
            took = time.monotonic() - stopped_at
            reader.join(10)
    finally:
        server.stop()
        fake.stop()
    log = server.log_text()
    [(status, output_tokens, cost)] = space.sql(
        "SELECT status, output_tokens, cost_nanos FROM usage_record"
    )
    assert status == "abandoned"
    assert len(received) > (WINDOW_SEC - 1) / PIECE_SEC, "not relayed for the whole window"
    assert len(received) <= output_tokens <= len(received) + SLACK_TOKENS, (len(received), log)
    assert took < WINDOW_SEC + 2, f"the stop took {took:.1f} s:\n{log}"
    assert space.sql("SELECT COUNT(*) FROM hold") == [(0,)]
    balance = space.json("users", "show", f"cut{workers}@example.com")["credit_balance_usd"]
    assert round((1 - balance) * 1e9) == cost
    assert "1 call still running when the stop's 3 s ran out was cut" in log, log
    assert space.run("doctor").stdout.startswith("ok: ")
