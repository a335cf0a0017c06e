"""Key caps across a real midnight: a box whose clock (libfaketime) runs from just before the
Monday that is the 1st of a month, so its daily, weekly and monthly periods all end while it
serves, and the process's own clock and its period starts of the day, not a changed database,
roll them over."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.gateway.bursts import CAP, EACH, FLAT, FLAT_MODEL
from tests.gateway.conftest import Box, BoxFactory

pytestmark = pytest.mark.timeout(150)
FAKETIME_LIB = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
SUNDAY_NIGHT = "2027-02-28 23:59:35"  # Sunday; 2027-03-01 is a Monday and the 1st
NEW_PERIOD = "2027-03-01 00:00:00"
RESETS = ("daily", "weekly", "monthly", None)


def chat(box: Box, key: str) -> httpx.Response:
    body = {"model": FLAT, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": CAP}
    return box.http(key).post("/v1/chat/completions", json=body)


def outcome(answer: httpx.Response) -> tuple[int, str | None]:
    """An answer's status and its error's code (None: no error)."""
    error = answer.json().get("error") if answer.status_code >= 400 else None
    return answer.status_code, error["code"] if error else None


def spent(box: Box, login: str) -> dict[str | None, float]:
    """spent_usd of the account's capped keys by their reset, as GET /api/v1/auth/key shows it."""
    keys = box.http(login).get("/api/v1/auth/key").json()
    return {k["limit_reset"]: k["spent_usd"] for k in keys if k["limit_usd"] is not None}


@pytest.mark.skipif(not FAKETIME_LIB.exists(), reason="libfaketime is not installed")
def test_caps_start_again_at_a_real_midnight_that_ends_every_period(
    box_factory: BoxFactory, fake: FakeOpenAI
) -> None:
    env = {"LD_PRELOAD": str(FAKETIME_LIB), "FAKETIME": f"@{SUNDAY_NIGHT}",
           "FAKETIME_DONT_RESET": "1"}  # fmt: skip
    box = box_factory(env=env)
    box.cli(*FLAT_MODEL)
    box.until_served(FLAT)
    _, login = box.new_user("50")
    fake.default = Reply(completion_tokens_from_cap=True)
    cap = f"{(EACH + EACH // 2) / 1e9:.9f}"  # one request's worth, not two
    keys: dict[str | None, str] = {}
    for reset in RESETS:
        limits = {"limit_usd": cap, "limit_reset": reset}
        made = box.http(login).post("/api/v1/auth/key", json=limits)
        assert made.status_code == 200, made.text
        keys[reset] = made.json()["full_key"]
    spends = [(chat(box, key).status_code, outcome(chat(box, key))) for key in keys.values()]
    starts = box.query("SELECT period_start FROM api_key WHERE limit_reset IS NOT NULL")
    if any(str(start or "") >= NEW_PERIOD for (start,) in starts):  # a machine too slow for 25 s
        pytest.skip("the box reached midnight before its keys spent their caps")
    assert spends == [(200, (402, "key_limit_reached"))] * len(RESETS), spends
    deadline = time.monotonic() + 60
    while spent(box, login)["daily"]:  # the box's clock passes midnight
        assert time.monotonic() < deadline, "the box's day never ended"
        time.sleep(0.5)
    assert spent(box, login) == {"daily": 0, "weekly": 0, "monthly": 0, None: EACH / 1e9}
    assert [chat(box, keys[reset]).status_code for reset in RESETS] == [200, 200, 200, 402]
    rows = box.query("SELECT limit_reset, spent_nanos, held_nanos, period_start FROM api_key "
                     "WHERE limit_nanos IS NOT NULL ORDER BY id")  # fmt: skip
    assert [(r[0], r[1], r[2], str(r[3])) for r in rows[:3]] == [
        (reset, EACH, 0, NEW_PERIOD) for reset in RESETS[:3]
    ]
    assert rows[3][1:3] == (EACH, 0)
