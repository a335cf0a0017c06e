"""`serve --workers 2` on SQLite, one worker killed (SIGKILL) while requests of both are held at
a slow upstream: the survivor's sweep frees the dead worker's holds, never its own."""

from __future__ import annotations

import os
import signal
import threading
import time

import httpx
import pytest

from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.gateway.conftest import MODEL, BoxFactory

pytestmark = pytest.mark.timeout(120)
HELLO = [{"role": "user", "content": "Say hello"}]


def test_a_killed_workers_holds_are_freed_and_the_others_kept(
    box_factory: BoxFactory, fake: FakeOpenAI
) -> None:
    box = box_factory("--workers", "2", env={"CODELACE_HOLD_SWEEP_SEC": "0.5"})
    email, key = box.new_user()
    fake.default = Reply(delay_before=8)

    def ask() -> None:
        try:
            with httpx.Client(base_url=box.url, timeout=40) as http:
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
    assert box.balance(email)[1] == sum(
        n for (n,) in box.query("SELECT amount_nanos FROM hold WHERE owner = ?", survivor)
    )
