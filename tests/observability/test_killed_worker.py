"""`serve --workers 2`, one worker killed (SIGKILL, as the OOM killer does) while it relays a
stream: the scrape's gauges speak of the workers alive, not of the dead one's last values."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.gateway.conftest import MODEL, Box, BoxFactory
from tests.observability.test_metrics_and_logs import scrape, total, wait_for_settled_calls
from tests.support import TLS

pytestmark = pytest.mark.timeout(120)
HELLO = [{"role": "user", "content": "Say hello"}]
DURATIONS = "codelace_inference_duration_seconds_count"


def test_a_killed_workers_streams_leave_the_active_streams_gauge(
    box_factory: BoxFactory, fake: FakeOpenAI
) -> None:
    box = box_factory("--workers", "2")
    _, key = box.new_user()
    fake.push(Reply(hang_after=1))  # streams one event, then goes silent

    def stream() -> None:
        body = {"model": MODEL, "messages": HELLO, "stream": True}
        headers = {"authorization": f"Bearer {key}"}
        try:
            with httpx.stream("POST", f"{box.url}/v1/chat/completions", json=body,
                              headers=headers, timeout=40, verify=TLS) as answer:  # fmt: skip
                for _ in answer.iter_bytes():
                    pass
        except httpx.HTTPError:
            pass

    threading.Thread(target=stream, daemon=True).start()
    deadline = time.monotonic() + 20
    while total(scrape(box), "codelace_active_streams") != 1:
        assert time.monotonic() < deadline, "the stream never started"
        time.sleep(0.1)
    (owner,) = box.query("SELECT owner FROM hold")[0]
    os.kill(int(str(owner).split(":")[1]), signal.SIGKILL)
    deadline = time.monotonic() + 20
    while (streams := total(scrape(box), "codelace_active_streams")) != 0:
        assert time.monotonic() < deadline, f"{streams} active streams after their worker died"
        time.sleep(0.2)
    box.server.wait_for_log(r".*died \(exit .*starting a new one")


def _workers(box: Box) -> list[int]:
    """The serving processes alive, as the log names them when they start (a zombie, killed
    and not yet reaped by the supervisor, is not alive)."""
    started = re.findall(r"Starting worker \[(\d+)\]", box.server.log_text())
    return [int(pid) for pid in dict.fromkeys(started) if _running(int(pid))]


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _two_workers(box: Box, besides: tuple[int, ...] = ()) -> list[int]:
    """The two workers once both have started (none of `besides`): under load the second one
    (or a replacement) starts seconds after the box first answers, so wait for it, bounded."""
    deadline = time.monotonic() + 30
    while len(workers := [pid for pid in _workers(box) if pid not in besides]) < 2:
        assert time.monotonic() < deadline, f"two workers never ran: {workers}"
        time.sleep(0.1)
    return workers


def test_a_killed_workers_counters_neither_vanish_nor_double(box_factory: BoxFactory) -> None:
    """What a worker counted before the OOM killer took it stays in the scrape, once, and its
    replacement counts on from there: no counter goes back (a reset Prometheus would read as
    lost traffic) or jumps."""
    box = box_factory("--workers", "2")
    _, key = box.new_user()
    body = {"model": MODEL, "messages": HELLO}

    def answered(count: int) -> None:
        for _ in range(count):  # a new connection each: the requests spread over the workers
            with box.http(key) as client:
                assert client.post("/v1/chat/completions", json=body).status_code == 200

    workers = _two_workers(box)  # before the requests, so they can spread over both
    answered(6)
    wait_for_settled_calls(box, 6)  # all handed over before a worker dies
    for killed, pid in enumerate(workers, 1):  # both in turn: each one's counts are kept
        os.kill(pid, signal.SIGKILL)
        _two_workers(box, besides=(pid,))  # its replacement started
        box.server.wait_for_log(r".*died \(exit .*starting a new one", count=killed)
        for _ in range(3):
            samples = scrape(box)
            assert total(samples, "codelace_inference_requests_total") == 6
            assert total(samples, "codelace_tokens_total", kind="output") > 0
    answered(4)
    wait_for_settled_calls(box, 10)
    assert total(scrape(box), "codelace_inference_requests_total") == 10  # and no more


def _metric_files(temp: Path) -> list[str]:
    (folder,) = temp.glob("codelace-metrics-*")
    return sorted(path.name for path in folder.glob("*.db"))


def test_a_killed_workers_files_are_folded_not_kept_one_set_per_death(
    box_factory: BoxFactory, tmp_path: Path
) -> None:
    """Each dead worker left its counter and histogram files (64 KiB each at least, in the
    temporary directory, often a small tmpfs) in the metrics folder for as long as the box
    ran, and every scrape read them all: a worker killed again and again (an OOM loop) grew
    both without bound. What they counted is folded into one file per kind now, and the
    scrape shows it once, as before."""
    box = box_factory("--workers", "2", env={"TMPDIR": str(tmp_path)})
    _, key = box.new_user()
    body = {"model": MODEL, "messages": HELLO}
    killed: list[int] = []
    for round_ in range(2):  # each worker killed twice: four deaths
        for pid in _two_workers(box):
            with box.http(key) as client:
                assert client.post("/v1/chat/completions", json=body).status_code == 200
            deadline = time.monotonic() + 10  # its duration is observed once it answered
            while total(scrape(box), DURATIONS) < len(killed) + 1:
                assert time.monotonic() < deadline, "the request's duration was not counted"
                time.sleep(0.05)
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            _two_workers(box, besides=tuple(killed))
            box.server.wait_for_log(r".*died \(exit .*starting a new one", count=len(killed))
        files = _metric_files(tmp_path)
        assert not [name for name in files if any(f"_{pid}." in name for pid in killed)], files
        assert len(files) <= 2 + 2 * 3, files  # folded counters and histograms, two workers'
        samples = scrape(box)
        assert total(samples, "codelace_inference_requests_total") == 2 * (round_ + 1)
        assert total(samples, DURATIONS) == 2 * (round_ + 1)
