"""`serve --workers 2` on SQLite, one worker killed (SIGKILL) while requests of both are held at
a slow upstream: the survivor's sweep frees the dead worker's holds, never its own. A crashed
server's hold whose pid is alive again (another process's) is freed once older than any
request."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from codelace_box.gateway.holds import ORPHAN_AGE_SEC
from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.gateway.conftest import MODEL, BoxFactory
from tests.pg_cluster import wanted_engine, write_config_db
from tests.support import TLS

pytestmark = pytest.mark.timeout(120)
HELLO = [{"role": "user", "content": "Say hello"}]


def test_a_killed_workers_holds_are_freed_and_the_others_kept(
    box_factory: BoxFactory, fake: FakeOpenAI
) -> None:
    box = box_factory("--workers", "2", env={"CODELACE_HOLD_SWEEP_SEC": "0.5"})
    email, key = box.new_user()
    fake.default = Reply(delay_before=12)  # the survivor's holds outlive the checks

    def ask() -> None:
        try:
            with httpx.Client(base_url=box.url, timeout=40, verify=TLS) as http:
                http.post("/v1/chat/completions", json={"model": MODEL, "messages": HELLO},
                          headers={"authorization": f"Bearer {key}"})  # fmt: skip
        except httpx.HTTPError:
            pass

    owners: dict[str, int] = {}
    deadline = time.monotonic() + 20
    while len(owners) < 2 and time.monotonic() < deadline:
        threading.Thread(target=ask, daemon=True).start()
        time.sleep(0.3)
        owners = {o: n for o, n in box.query("SELECT owner, COUNT(*) FROM hold GROUP BY owner")}
    assert len(owners) == 2, owners
    victim, survivor = sorted(owners)
    os.kill(int(victim.split(":")[1]), signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        left = {o for (o,) in box.query("SELECT DISTINCT owner FROM hold")}
        if victim not in left:
            break
        time.sleep(0.2)
    assert left == {survivor}
    [(held, survivors_holds)] = box.query(  # one statement: a hold settling between two reads
        'SELECT held_nanos, (SELECT SUM(amount_nanos) FROM hold WHERE owner = ?) '
        'FROM "user" WHERE email = ?', survivor, email,  # (a busy machine) would skew them
    )  # fmt: skip
    assert held == survivors_holds


@pytest.mark.skipif(wanted_engine() == "postgres", reason="SQLite: owners are pids of this host")
def test_a_hold_older_than_any_request_is_freed_by_the_sweep_whoever_owns_it(
    box_factory: BoxFactory,
) -> None:
    """A crashed server's hold whose pid a live process took since (a reboot, a container
    restarted) looked alive: only a start at least 6 hours after the hold freed it, so a
    box that stayed up kept that much of the user's credit blocked. The sweep frees a hold
    older than any request can live; a younger one of a live process stays."""
    box = box_factory(env={"CODELACE_HOLD_SWEEP_SEC": "0.3"})
    email, _ = box.new_user()
    [(user_id,)] = box.query('SELECT id FROM "user" WHERE email = ?', email)
    live = f"{socket.gethostname()}:{os.getpid()}"  # this test's pid: alive, not a server
    for request_id, age in (("req_ancient", ORPHAN_AGE_SEC + 60), ("req_recent", 3600)):
        created = str(datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=age))
        write_config_db(
            box.config, "INSERT INTO hold (user_id, amount_nanos, request_id, created_at, owner) "
            "VALUES (?, 1000, ?, ?, ?)", (user_id, request_id, created, live),
        )  # fmt: skip
    write_config_db(box.config, 'UPDATE "user" SET held_nanos = 2000 WHERE id = ?', (user_id,))
    deadline = time.monotonic() + 10
    while box.query("SELECT request_id FROM hold") != [("req_recent",)]:
        assert time.monotonic() < deadline, box.query("SELECT request_id, owner FROM hold")
        time.sleep(0.1)
    assert box.balance(email)[1] == 1000


FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


@pytest.mark.skipif(wanted_engine() == "postgres", reason="SQLite: holds judged by their age")
@pytest.mark.skipif(not os.path.exists(FAKETIME_LIB), reason="libfaketime is not installed")
def test_a_wall_clock_leap_frees_no_live_workers_holds(
    box_factory: BoxFactory, fake: FakeOpenAI, tmp_path: Path
) -> None:
    """The wall clock stepped 7 hours ahead while calls of both workers waited on the upstream
    (NTP's first step on a VM whose clock was behind): each worker's sweep took the other's
    holds for a crashed server's, older than any request, and freed them ("process or call
    gone"), so the calls were answered with `cost_usd: 0.0` and charged nothing, no usage row.
    Holds are judged old by the time each worker counted, which a leap does not move. The
    step comes before the workers' first sweep (NTP's first step comes just after boot): a
    clock made at that sweep, not at the worker's start, took the leapt time for the time."""
    clock = tmp_path / "faketime"
    clock.write_text("+0\n")
    env = {"LD_PRELOAD": FAKETIME_LIB, "FAKETIME_TIMESTAMP_FILE": str(clock),
           "FAKETIME_NO_CACHE": "1", "DONT_FAKE_MONOTONIC": "1",
           "CODELACE_HOLD_SWEEP_SEC": "7"}  # fmt: skip
    box = box_factory("--workers", "2", env=env)
    box.until_served(MODEL, workers=2)
    started = time.monotonic()  # the workers started before (they answer)
    email, key = box.new_user()
    fake.default = Reply(delay_before=10)  # past the workers' first sweep
    answers: list[httpx.Response] = []

    def ask() -> None:
        body = {"model": MODEL, "messages": HELLO}
        with httpx.Client(base_url=box.url, timeout=40, verify=TLS) as http:
            auth = {"authorization": f"Bearer {key}"}
            answers.append(http.post("/v1/chat/completions", json=body, headers=auth))

    asking: list[threading.Thread] = []
    while len(box.query("SELECT DISTINCT owner FROM hold")) < 2:
        assert time.monotonic() - started < 5.5, "the calls did not reach both workers in time"
        asking.append(threading.Thread(target=ask))
        asking[-1].start()
        time.sleep(0.2)
    clock.write_text("+7h\n")  # before either worker's first sweep
    for thread in asking:
        thread.join()
    assert [a.status_code for a in answers] == [200] * len(asking)
    assert all(a.json()["usage"]["cost_usd"] > 0 for a in answers), [
        a.json()["usage"] for a in answers
    ]
    for answer in answers:
        assert box.settled_row(answer.headers["x-request-id"])["status"] == "ok"
    assert box.balance(email)[1] == 0
