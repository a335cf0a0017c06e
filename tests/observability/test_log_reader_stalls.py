"""serve's log reader stalls (a log shipper that hangs, `serve | slow-consumer`, Ctrl-S in the
terminal): requests are still answered, the lines that did not fit are dropped and counted, and
once the reader reads again one line says how many were dropped and the later lines arrive."""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import termios
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.support import (
    HEALTHY_WAIT_SEC,
    PROGRAM,
    TLS,
    base_sections,
    cli_env,
    kill_tree,
    write_config,
)

ANSWER_WITHIN_SEC = 15.0  # each request, while the pipe is full (a blocked write waits forever;
# 5 s was too short for a worker started on a CI machine loaded by the rest of the suite)
MAX_REQUESTS = 12_000  # the pipe (64 KiB) and the box's buffers fill long before
DROPPED = re.compile(r"dropped (\d+) log lines")


def _serve(
    tmp_path: Path, workers: int, log_format: str = "text", env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    sections = base_sections(tmp_path)
    sections["server"]["workers"] = workers
    sections["log"] = {"format": log_format}
    config = write_config(tmp_path / "codelace.toml", sections)
    process = subprocess.Popen(
        [*PROGRAM, "--config", str(config), "serve"],
        stdout=subprocess.PIPE,  # read by nobody until the test says so
        stderr=subprocess.STDOUT,
        env=cli_env(env),
        cwd=tmp_path,
    )
    base_url = f"http://127.0.0.1:{sections['server']['port']}"
    deadline = time.monotonic() + HEALTHY_WAIT_SEC
    with httpx.Client(timeout=1, verify=TLS) as client:
        while time.monotonic() < deadline:
            assert process.poll() is None, "serve exited early"
            try:
                if client.get(base_url + "/healthz").status_code == 200:
                    return process, base_url
            except httpx.HTTPError:
                time.sleep(0.05)
    kill_tree(process)
    raise AssertionError("serve not healthy")


def _unread_bytes(process: subprocess.Popen[bytes]) -> int:
    assert process.stdout is not None
    found = fcntl.ioctl(process.stdout.fileno(), termios.FIONREAD, b"\0\0\0\0")
    return int.from_bytes(found, "little")


def _pipe_size(process: subprocess.Popen[bytes]) -> int:
    """The pipe's capacity. A full pipe holds less than that: a line that does not fit in the
    tail of the kernel's last page takes a page of its own (59,800 of 65,536 bytes seen)."""
    assert process.stdout is not None
    return fcntl.fcntl(process.stdout.fileno(), fcntl.F_GETPIPE_SZ)


def _dropped_so_far(client: httpx.Client, base_url: str) -> float:
    text = client.get(base_url + "/metrics").text
    found = re.search(r"^codelace_log_lines_dropped_total (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def _fill_until_dropping(client: httpx.Client, base_url: str) -> int:
    """Requests, each answered within its bound, until the box says it drops lines."""
    for sent in range(1, MAX_REQUESTS + 1):
        started = time.monotonic()
        assert client.get(base_url + "/healthz").status_code == 200
        assert time.monotonic() - started < ANSWER_WITHIN_SEC
        if sent % 250 == 0 and _dropped_so_far(client, base_url) > 0:
            return sent
    raise AssertionError(f"no line dropped after {MAX_REQUESTS} requests")


class _Reader(threading.Thread):
    """Reads the pipe again, line by line."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        super().__init__(daemon=True)
        self.stream = process.stdout
        self.lines: list[str] = []

    def run(self) -> None:
        assert self.stream is not None
        for raw in self.stream:
            self.lines.append(raw.decode(errors="replace"))

    def wait_for(self, needle: str, wait: float = 5.0) -> int:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            for index, line in enumerate(list(self.lines)):
                if needle in line:
                    return index
            time.sleep(0.01)
        raise AssertionError(f"no {needle!r} in the {len(self.lines)} lines read")


@pytest.mark.parametrize(("workers", "log_format"), [(1, "text"), (2, "json")])
def test_requests_are_answered_while_the_log_reader_stalls(
    tmp_path: Path, workers: int, log_format: str
) -> None:
    """Before: after about 490 requests the pipe was full, a log write blocked, and with it
    the worker's event loop: every request hung."""
    process, base_url = _serve(tmp_path, workers, log_format)
    try:
        with httpx.Client(timeout=ANSWER_WITHIN_SEC, verify=TLS) as client:
            _fill_until_dropping(client, base_url)
            assert _unread_bytes(process) > _pipe_size(process) * 3 // 4  # a stalled reader
            reader = _Reader(process)
            reader.start()
            dropped_at = reader.wait_for("dropped ")
            assert int(DROPPED.findall(reader.lines[dropped_at])[0]) > 0
            if log_format == "json":  # in the log's own format
                assert json.loads(reader.lines[dropped_at])["level"] == "warning"
            later = client.get(base_url + "/healthz").headers["x-request-id"]
            assert reader.wait_for(later) > dropped_at  # prompt, and after the count
        process.terminate()
        assert process.wait(30) == 0
        reader.join(5)
        assert "Server Stopped" in "".join(reader.lines[-5:])  # the last lines, flushed
    finally:
        if process.poll() is None:
            kill_tree(process)
            process.wait(10)


def test_a_stop_while_the_log_reader_stalls_ends_serve(tmp_path: Path) -> None:
    """SIGTERM with the pipe still full: serve writes what it can, gives up on a reader that
    does not read within its bound, and exits (before: it hung on its blocked write)."""
    process, base_url = _serve(tmp_path, 2)
    try:
        with httpx.Client(timeout=ANSWER_WITHIN_SEC, verify=TLS) as client:
            _fill_until_dropping(client, base_url)
        started = time.monotonic()
        process.terminate()
        assert process.wait(30) == 0
        assert time.monotonic() - started < 15
    finally:
        if process.poll() is None:
            kill_tree(process)
            process.wait(10)


def _workers(process: subprocess.Popen[bytes], base_url: str) -> set[int]:
    """The processes listening on the box's port, its supervisor aside."""
    port = base_url.rsplit(":", 1)[1]
    listed = subprocess.run(
        ["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout
    return {int(pid) for pid in re.findall(r"pid=(\d+)", listed)} - {process.pid}


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2)")
def test_workers_started_while_the_log_reader_stalls_serve(tmp_path: Path) -> None:
    """A worker replaced (the OOM killer) while the pipe is full writes its "Starting worker"
    line before it serves: before, that write blocked and the new worker never answered."""
    process, base_url = _serve(tmp_path, 2)
    try:
        with httpx.Client(timeout=ANSWER_WITHIN_SEC, verify=TLS) as client:
            _fill_until_dropping(client, base_url)
            first = _workers(process, base_url)
            assert len(first) == 2, first
            for killed, pid in enumerate(sorted(first), 1):  # both: then only new ones answer
                os.kill(pid, signal.SIGKILL)
                deadline = time.monotonic() + 30
                while len(_workers(process, base_url) - first) < killed:
                    assert time.monotonic() < deadline, "the worker was not replaced"
                    time.sleep(0.1)
            for _ in range(5):
                assert client.get(base_url + "/healthz").status_code == 200
    finally:
        kill_tree(process)
        process.wait(10)


def _counted(temp: Path, pid: int, name: str) -> float:
    """What the process counted under `name` in its metrics values file in the box's folder
    (0: no such file or value)."""
    from prometheus_client.mmap_dict import MmapedDict

    found = list(temp.glob(f"codelace-metrics-*/counter_{pid}.db"))
    if not found:
        return 0.0
    values = MmapedDict.read_all_values_from_file(str(found[0]))
    return sum(v for key, v, _, _ in values if f'"{name}"' in key)


def _until_both_serve(base_url: str, temp: Path, process: subprocess.Popen[bytes]) -> set[int]:
    """The two workers, once each has answered a request (a worker killed before every
    worker started is not replaced: Sanic's supervisor first waits for all to start)."""
    deadline = time.monotonic() + 30
    with httpx.Client(timeout=ANSWER_WITHIN_SEC, verify=TLS) as client:
        while True:
            client.get(base_url + "/healthz", headers={"connection": "close"})
            workers = _workers(process, base_url)
            served = {p for p in workers if _counted(temp, p, "codelace_http_requests_total")}
            if len(served) == 2:
                return served
            assert time.monotonic() < deadline, f"not both of {workers} served: {served}"


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2)")
def test_the_supervisors_dropped_lines_are_counted_too(tmp_path: Path) -> None:
    """With several workers the supervisor's own lines (a worker died, a new one started) are
    dropped as the workers' are when nobody reads the log, but were said only in the log:
    codelace_log_lines_dropped_total counted the workers' alone. The supervisor counts into
    the workers' metrics folder now, so the scrape shows its drops too."""
    # the box's TMPDIR, short: Sanic's manager makes a Unix socket under it, and a path past
    # 107 bytes (pytest's tmp_path under xdist) stops serve from starting
    temp = Path(tempfile.mkdtemp(prefix="ld-", dir="/tmp"))
    process, base_url = _serve(tmp_path, 2, env={"TMPDIR": str(temp)})
    try:
        assert process.stdout is not None
        process.stdout.close()  # the reader is gone: every line from now on is dropped
        (pid, *_) = first = sorted(_until_both_serve(base_url, temp, process))
        os.kill(pid, signal.SIGKILL)  # the supervisor says so, and starts a new one
        deadline = time.monotonic() + 30
        while len(new := _workers(process, base_url) - set(first)) < 1:
            assert time.monotonic() < deadline, f"{pid} of {first} was not replaced: {new}"
            time.sleep(0.1)
        drops = "codelace_log_lines_dropped_total"
        while (counted := _counted(temp, process.pid, drops)) < 1:
            assert time.monotonic() < deadline, "the supervisor's drops were not counted"
            time.sleep(0.1)
        with httpx.Client(timeout=ANSWER_WITHIN_SEC, verify=TLS) as client:
            assert _dropped_so_far(client, base_url) >= counted
    finally:
        kill_tree(process)
        shutil.rmtree(temp, ignore_errors=True)
