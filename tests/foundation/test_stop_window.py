"""A stop's one window (Sanic's GRACEFUL_SHUTDOWN_TIMEOUT, shortened here through the
environment): a stream still running when it ends is cut there, charged what the upstream
sent of it until then (which its client got), and the process exits at the window's end, not
one more window later; the log says what was cut; a call not answered by then costs nothing.
A hangup (SIGHUP) stops as SIGTERM does, unless ignored (nohup); a box of several workers
refuses new connections from the signal on; a second signal kills its workers, not the group
of whatever launched it; a worker killed during the stop is logged and `serve` exits 1.
(test_server_stopping.py: what finishes within the window.)"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.foundation.conftest import make_workspace
from tests.foundation.test_server_stopping import metered_workspace
from tests.support import PROGRAM, TLS, ServerProcess, cli_env, free_port

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


@contextlib.contextmanager
def a_stream_under_way(
    base_url: str, key: str, timeout: float
) -> Iterator[tuple[threading.Thread, list[str]]]:
    """A streamed chat completion whose first piece has come, read on by a thread: (the
    reader, the content pieces received so far); the stream is closed on leaving."""
    body = {"model": "fake/m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    headers = {"authorization": f"Bearer {key}"}
    received: list[str] = []
    with httpx.stream("POST", base_url + "/v1/chat/completions", json=body, headers=headers,
                      timeout=timeout, verify=TLS) as answer:  # fmt: skip
        assert answer.status_code == 200
        reader = threading.Thread(target=read_pieces, args=(answer, received))
        reader.start()
        while not received:
            time.sleep(0.01)
        yield reader, received


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
    try:
        with a_stream_under_way(server.base_url, key, 60) as (reader, received):
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
    # one window and the time to stop, not two windows (a loaded machine adds seconds to a stop)
    assert took < 2 * WINDOW_SEC, f"the stop took {took:.1f} s:\n{log}"
    assert space.sql("SELECT COUNT(*) FROM hold") == [(0,)]
    balance = space.json("users", "show", f"cut{workers}@example.com")["credit_balance_usd"]
    assert round((1 - balance) * 1e9) == cost
    assert "1 call still running when the stop's 3 s ran out was cut" in log, log
    assert space.run("doctor").stdout.startswith("ok: ")


class SessionServer(ServerProcess):
    """`serve` as the leader of a process group of its own, as in a terminal's job: a hangup
    (the terminal closed, an SSH connection dropped) signals the whole group at once."""

    def launch(self, *extra_args: str) -> SessionServer:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [*self.program, "--config", str(self.config), "serve", *extra_args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=cli_env(self.env),
            cwd=self.config.parent,
            start_new_session=True,
        )
        log.close()
        return self


@pytest.mark.parametrize("workers", [1, 2])
def test_a_hangup_stops_like_sigterm_and_settles_the_stream_in_flight(
    tmp_path: Path, workers: int
) -> None:
    """SIGHUP to the process group (the operator's terminal closed) killed every process at
    once: the stream was cut, never charged though the upstream produced it, its hold left
    until the next start, and nothing logged."""
    from tests.fakes.openai_upstream import FakeOpenAI, Reply

    fake = FakeOpenAI().start()
    email = f"hangup{workers}@example.com"
    space, port, key = metered_workspace(tmp_path, fake.base_url, email)
    server = SessionServer(space.config, port).start("--workers", str(workers))
    server.wait_for_log(r"Worker ready \[(\d+)\]", workers)
    pieces = [f"w{n} " for n in range(8)]
    fake.push(Reply(pieces=pieces, piece_delay=0.3, prompt_tokens=7, completion_tokens=8))
    body = {"model": "fake/m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    headers = {"authorization": f"Bearer {key}"}
    text = ""
    try:
        with httpx.stream("POST", server.base_url + "/v1/chat/completions", json=body,
                          headers=headers, timeout=30, verify=TLS) as answer:  # fmt: skip
            for number, line in enumerate(answer.iter_lines()):
                if number == 2:
                    assert server.process is not None
                    os.killpg(server.process.pid, signal.SIGHUP)
                text += line
        assert server.process is not None and server.process.wait(20) == 0, server.log_text()
    finally:
        server.stop()
        fake.stop()
    assert all(piece in text for piece in pieces) and "[DONE]" in text
    assert space.sql("SELECT status, cost_nanos FROM usage_record") == [("ok", 23_000)]
    assert space.sql("SELECT COUNT(*) FROM hold") == [(0,)]
    assert space.json("users", "show", email)["credit_balance_usd"] == 0.999977
    assert "Received signal SIGHUP. Shutting down." in server.log_text()
    assert space.run("doctor").stdout.startswith("ok: ")


def connect_refused_within(port: int, seconds: float) -> None:
    """A stopping box takes no new connection: refused (or reset) within `seconds`, never
    accepted and left without an answer (a proxy would wait on it instead of trying another
    box)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
                connection.settimeout(2)
                connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: box\r\n\r\n")
                if not connection.recv(64):  # closed without an answer: refused in effect
                    return
        except (ConnectionRefusedError, ConnectionResetError):
            return
        except TimeoutError:
            raise AssertionError("a new connection was accepted and left hanging") from None
        assert time.monotonic() < deadline, f"still takes new connections after {seconds} s"
        time.sleep(0.05)


def test_a_stopping_box_of_two_workers_refuses_new_connections_at_once(tmp_path: Path) -> None:
    """The supervisor kept its listening socket open until it exited: while a worker finished
    a stream, new connections queued unanswered, then were reset when the stop ended."""
    from tests.fakes.openai_upstream import FakeOpenAI, Reply

    fake = FakeOpenAI().start()
    space, port, key = metered_workspace(tmp_path, fake.base_url, "refused@example.com")
    server = SessionServer(space.config, port).start("--workers", "2")
    server.wait_for_log(r"Worker ready \[(\d+)\]", 2)
    fake.push(Reply(pieces=[" x"] * 100, piece_delay=0.08, prompt_tokens=7, completion_tokens=100))
    try:
        with a_stream_under_way(server.base_url, key, 30) as (reader, received):
            assert server.process is not None
            server.process.send_signal(signal.SIGTERM)
            connect_refused_within(port, 3)
            assert server.process.poll() is None, "stopped before the stream finished"
            reader.join(20)
        assert server.process.wait(20) == 0, server.log_text()
    finally:
        server.stop()
        fake.stop()
    assert len(received) == 100
    assert space.sql("SELECT status, output_tokens FROM usage_record") == [("ok", 100)]


LAUNCHER = """
import subprocess, sys
serve = subprocess.Popen(sys.argv[1:])
print(serve.pid, flush=True)
print("launcher saw serve exit", serve.wait(), flush=True)
"""


def test_a_second_signal_kills_the_workers_not_the_launchers_process_group(
    tmp_path: Path,
) -> None:
    """A second SIGTERM (an impatient operator, a process manager that repeats it) ends a
    stopping box of several workers at once, as in Sanic; Sanic did it with SIGKILL to the
    workers' process group, which is `serve`'s launcher's too when `serve` leads none (a
    wrapper script, honcho, a deploy tool): the launcher was killed with it."""
    from tests.fakes.openai_upstream import FakeOpenAI, Reply

    fake = FakeOpenAI().start()
    space, port, key = metered_workspace(tmp_path, fake.base_url, "again@example.com")
    fake.push(Reply(pieces=[" x"] * 100, piece_delay=0.1, prompt_tokens=7))
    command = [*PROGRAM, "--config", str(space.config), "serve", "--workers", "2"]
    launcher = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=cli_env(),
        cwd=tmp_path,
        text=True,
        start_new_session=True,  # the launcher leads the group that `serve` joins
    )
    try:
        assert launcher.stdout is not None
        serve_pid = int(launcher.stdout.readline())
        deadline = time.monotonic() + 30
        while httpx_status(port) != 200:
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.1)
        with a_stream_under_way(f"http://127.0.0.1:{port}", key, 30) as (reader, _):
            os.kill(serve_pid, signal.SIGTERM)
            time.sleep(0.5)  # two signals at once would be one
            os.kill(serve_pid, signal.SIGTERM)
            output, _ = launcher.communicate(timeout=30)
            reader.join(10)
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
            launcher.wait(5)
        fake.stop()
    assert launcher.returncode == 0, output
    assert "launcher saw serve exit 1" in output, output
    assert "Shutdown interrupted. Killing." in output
    assert space.sql("SELECT COUNT(*) FROM usage_record") == [(0,)]  # cut unsettled, and
    assert space.sql("SELECT COUNT(*) FROM hold") == [(1,)]  # its hold freed at the next start


def httpx_status(port: int) -> int:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1, verify=TLS).status_code
    except httpx.HTTPError:
        return 0


class NohupServer(SessionServer):
    """`nohup codelace-box serve`: started to outlive its terminal (SIGHUP ignored)."""

    program = ("nohup", *PROGRAM)


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_under_nohup_outlives_a_hangup(tmp_path: Path, workers: int) -> None:
    """An ignored SIGHUP stays ignored: the box an operator started with nohup serves on when
    the terminal closes."""
    port = free_port()
    space = make_workspace(tmp_path, server={"port": port})
    server = NohupServer(space.config, port).start("--workers", str(workers))
    try:
        server.wait_for_log(r"Worker ready \[(\d+)\]", workers)
        assert server.process is not None
        os.killpg(server.process.pid, signal.SIGHUP)
        time.sleep(1)
        assert server.process.poll() is None, server.log_text()
        assert httpx.get(server.base_url + "/healthz", timeout=5, verify=TLS).status_code == 200
    finally:
        assert server.stop() == 0, server.log_text()
    assert "SIGHUP" not in server.log_text()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_call_the_stop_cut_before_its_answer_costs_nothing(tmp_path: Path, workers: int) -> None:
    """A non-streaming call whose upstream answers after the stop's window: its client was cut
    at the window's end, and the box waited on for the answer and charged it in full, for an
    answer never given."""
    from tests.fakes.openai_upstream import FakeOpenAI, Reply

    fake = FakeOpenAI().start()
    email = f"unanswered{workers}@example.com"
    space, port, key = metered_workspace(tmp_path, fake.base_url, email)
    env = {"CODELACE_SANIC_GRACEFUL_SHUTDOWN_TIMEOUT": str(WINDOW_SEC)}
    server = ServerProcess(space.config, port, env=env).start("--workers", str(workers))
    server.wait_for_log(r"Worker ready \[(\d+)\]", workers)
    fake.push(Reply(delay_before=WINDOW_SEC + 1.5, prompt_tokens=7, completion_tokens=8))
    body = {"model": "fake/m", "messages": [{"role": "user", "content": "hi"}]}
    headers = {"authorization": f"Bearer {key}"}
    try:
        with ThreadPoolExecutor(1) as pool:
            answer = pool.submit(httpx.post, server.base_url + "/v1/chat/completions",
                                 json=body, headers=headers, timeout=30)  # fmt: skip
            deadline = time.monotonic() + 10
            while not fake.requests:
                assert time.monotonic() < deadline, server.log_text()
                time.sleep(0.02)
            assert server.process is not None
            server.process.send_signal(signal.SIGTERM)
            with pytest.raises(httpx.RemoteProtocolError):
                answer.result()
        assert server.process.wait(20) == 0, server.log_text()
        time.sleep(2)  # the upstream's answer comes: nobody reads it
    finally:
        server.stop()
        fake.stop()
    assert space.sql("SELECT status, cost_nanos FROM usage_record") == [("abandoned", 0)]
    assert space.sql("SELECT COUNT(*) FROM hold") == [(0,)]
    assert space.json("users", "show", email)["credit_balance_usd"] == 1.0
    assert space.run("doctor").stdout.startswith("ok: ")


def test_a_worker_that_dies_during_the_stop_is_reported_and_serve_exits_1(
    tmp_path: Path,
) -> None:
    """A worker killed (kill -9, out of memory) while it finished its streams in a stop: its
    calls were cut, not answered, yet the log said nothing of it and `serve` exited 0, a clean
    stop for systemd; a worker dying while serving is logged and replaced."""
    from tests.fakes.openai_upstream import FakeOpenAI, Reply

    fake = FakeOpenAI().start()
    space, port, key = metered_workspace(tmp_path, fake.base_url, "diesstopping@example.com")
    server = ServerProcess(space.config, port).start("--workers", "2")
    pids = [int(pid) for pid in server.wait_for_log(r"Worker ready \[(\d+)\]", 2)]
    fake.push(Reply(pieces=[" x"] * 100, piece_delay=0.08, prompt_tokens=7))
    try:
        with a_stream_under_way(server.base_url, key, 30) as (reader, _):
            assert server.process is not None
            server.process.send_signal(signal.SIGTERM)
            time.sleep(1)  # the idle worker ended; the stream's finishes it
            busy = [pid for pid in pids if Path(f"/proc/{pid}").exists()]
            assert len(busy) == 1, server.log_text()
            os.kill(busy[0], signal.SIGKILL)
            reader.join(10)
            code = server.process.wait(20)
    finally:
        server.stop()
        fake.stop()
    assert code == 1, server.log_text()
    assert f"[{busy[0]}] died (exit -9) during the stop" in server.log_text()
    assert space.sql("SELECT COUNT(*) FROM hold") == [(1,)]  # freed at the next start


def test_a_worker_that_died_before_the_stop_is_not_said_to_have_died_in_it(
    tmp_path: Path,
) -> None:
    """A worker that died while serving and was not replaced yet (it died twice within the
    respawn pause) when a stop came: its calls were cut before the stop, yet the stop was said
    to have killed it ("died ... during the stop") and `serve` exited 1, a failed stop for
    systemd."""
    port = free_port()
    space = make_workspace(tmp_path, server={"port": port})
    server = ServerProcess(space.config, port).start("--workers", "2")
    try:
        first = server.wait_for_log(r"Worker ready \[(\d+)\]", 2)
        os.kill(int(first[0]), signal.SIGKILL)
        replacement = int(server.wait_for_log(r"Worker ready \[(\d+)\]", 3)[2])
        os.kill(replacement, signal.SIGKILL)  # within the pause: not replaced at once
        time.sleep(1)  # dead before the stop (its death is logged when the pause ends)
        assert server.process is not None
        server.process.send_signal(signal.SIGTERM)
        code = server.process.wait(30)
    finally:
        server.kill()
    assert "during the stop" not in server.log_text()
    assert code == 0, server.log_text()
