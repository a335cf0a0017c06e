"""A budget set on a key while one of its requests is in flight, through a real box.

A key without a cap or a reset has its row left alone by its requests (no statement on it): its
spend is its running total. When the operator caps it while a request is held at the upstream,
that request's hold is counted against the cap at once, and when it settles its charge lands
in the key's spend and its hold leaves the key's held_nanos; the cap then refuses what no
longer fits. And the other way: a cap cleared mid-flight, the request still counted once; and
budgets set and cleared again and again under load on two workers, every charge counted once.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import pytest

from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.gateway.conftest import Box, BoxFactory, cost_nanos
from tests.limits.conftest import FLAT

pytestmark = pytest.mark.timeout(120)
T = TypeVar("T")
CAP = 100  # output tokens a request reserves and is charged
EACH = cost_nanos(0, CAP, "0", "10")  # its hold and its charge
HELLO = [{"role": "user", "content": "Hi"}]


def in_background(work: Callable[[], T]) -> Future[T]:
    pool = ThreadPoolExecutor(1)
    future = pool.submit(work)
    pool.shutdown(wait=False)
    return future


def held_reply() -> Reply:
    """A completion of CAP output tokens whose body stops halfway until `fake.resume`."""
    body = json.dumps({
        "id": "chatcmpl-held", "object": "chat.completion", "created": 1, "model": "flat",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "late"}}],
        "usage": {"prompt_tokens": 0, "completion_tokens": CAP, "total_tokens": CAP},
    }).encode()  # fmt: skip
    half = len(body) // 2
    return Reply(raw=[body[:half], body[half:]], pause_after=1, content_type="application/json")


def chat(box: Box, key: str) -> httpx.Response:
    body = {"model": FLAT, "messages": HELLO, "max_tokens": CAP}
    return box.http(key).post("/v1/chat/completions", json=body)


def in_flight(box: Box, fake: FakeOpenAI, key: str) -> Future[httpx.Response]:
    """A request admitted (its hold taken) and held at the upstream."""
    fake.push(held_reply())
    answer = in_background(lambda: chat(box, key))
    assert fake.paused.wait(15)
    return answer


def key_money(box: Box, key_id: str) -> tuple[int, int]:
    """The key row's (spent_nanos, held_nanos)."""
    rows = box.query("SELECT spent_nanos, held_nanos FROM api_key WHERE uuid = ?", key_id)
    return rows[0]


def holds_counted(box: Box, key_id: str) -> list[Any]:
    sql = "SELECT h.key_held FROM hold h JOIN api_key k ON k.id = h.api_key_id WHERE k.uuid = ?"
    return [int(row[0]) for row in box.query(sql, key_id)]


def spent_usd(box: Box, key: str, key_id: str) -> float:
    keys = box.http(key).get("/api/v1/auth/key").json()
    return float(next(k for k in keys if k["id"] == key_id)["spent_usd"])


def refused(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def new_key(box: Box, email: str) -> tuple[str, str]:
    made = box.http(box.keys[email]).post("/api/v1/auth/key", json={"name": "plain"})
    assert made.status_code == 200, made.text
    return made.json()["full_key"], made.json()["id"]


@dataclass
class BusyKey:
    """A box with two workers and a key on the flat model, with its owner's login."""

    box: Box
    login: str
    key: str
    key_id: str


def changed_under_load(
    box_factory: BoxFactory, fake: FakeOpenAI, make_changes: Callable[[BusyKey], None]
) -> tuple[BusyKey, list[int]]:
    """Four clients calling the key on two workers while `make_changes` runs; the key, and
    the status of every call they made."""
    busy = box_factory("--workers", "2")
    busy.cli("models", "set", FLAT, "--input-per-1m", "0", "--output-per-1m", "10",
             "--provider", "fake")  # fmt: skip
    busy.until_served(FLAT, workers=2)
    fake.default = Reply(completion_tokens_from_cap=True, delay_before=0.05)
    email, login = busy.new_user("500")
    key, key_id = new_key(busy, email)
    stop = threading.Event()

    def load() -> list[int]:
        with busy.http(key) as http:
            body = {"model": FLAT, "messages": HELLO, "max_tokens": CAP}
            return [http.post("/v1/chat/completions", json=body).status_code
                    for _ in iter(stop.is_set, True)]  # fmt: skip

    senders = [in_background(load) for _ in range(4)]
    run = BusyKey(busy, login, key, key_id)
    try:
        make_changes(run)
    finally:
        stop.set()
    return run, [status for sender in senders for status in sender.result(60)]


def test_a_cap_set_mid_flight_counts_the_request_and_then_refuses(
    box: Box, fake: FakeOpenAI
) -> None:
    fake.default = Reply(completion_tokens_from_cap=True)
    email, _ = box.new_user("50")
    key, key_id = new_key(box, email)
    assert chat(box, key).status_code == 200
    assert (key_money(box, key_id), spent_usd(box, key, key_id)) == ((0, 0), EACH / 1e9)
    answer = in_flight(box, fake, key)
    assert (key_money(box, key_id), holds_counted(box, key_id)) == ((0, 0), [0])
    cap = EACH * 5 // 2  # room for the one spent and the one in flight, not for a third
    box.cli("keys", "update", key_id[:13], "--limit-usd", f"{cap / 1e9:.9f}")
    assert (key_money(box, key_id), holds_counted(box, key_id)) == ((EACH, EACH), [1])
    assert refused(chat(box, key)) == (402, "key_limit_reached")  # the hold in flight counts
    fake.resume.set()
    assert answer.result(30).status_code == 200
    assert key_money(box, key_id) == (2 * EACH, 0)
    assert spent_usd(box, key, key_id) == pytest.approx(2 * EACH / 1e9)
    assert refused(chat(box, key)) == (402, "key_limit_reached")
    box.cli("keys", "update", key_id[:13], "--limit-usd", f"{3 * EACH / 1e9:.9f}")
    assert chat(box, key).status_code == 200  # the cap exactly
    assert refused(chat(box, key)) == (402, "key_limit_reached")
    assert key_money(box, key_id) == (3 * EACH, 0)
    assert box.balance(email) == (50 * 10**9 - 3 * EACH, 0)
    box.cli("doctor")


def test_a_cap_cleared_mid_flight_still_counts_the_request_once(box: Box, fake: FakeOpenAI) -> None:
    fake.default = Reply(completion_tokens_from_cap=True)
    email, _ = box.new_user("50")
    key, key_id = new_key(box, email)
    patch = f"/api/v1/auth/key/{key_id}"
    assert box.http(key).patch(patch, json={"limit_usd": 1}).status_code == 200
    assert chat(box, key).status_code == 200
    answer = in_flight(box, fake, key)
    assert key_money(box, key_id) == (EACH, EACH)
    cleared = box.http(key).patch(patch, json={"limit_usd": None})
    assert cleared.json()["spent_usd"] == pytest.approx(EACH / 1e9)
    fake.resume.set()
    assert answer.result(30).status_code == 200
    assert key_money(box, key_id)[1] == 0  # the hold counted on the row left it
    assert spent_usd(box, key, key_id) == pytest.approx(2 * EACH / 1e9)
    assert chat(box, key).status_code == 200  # no cap: the row is left alone, the spend counts
    assert spent_usd(box, key, key_id) == pytest.approx(3 * EACH / 1e9)
    assert key_money(box, key_id) == (2 * EACH, 0)
    box.cli("doctor")


def test_budgets_set_and_cleared_under_load_on_two_workers_count_every_charge_once(
    box_factory: BoxFactory, fake: FakeOpenAI
) -> None:
    def make_changes(run: BusyKey) -> None:
        for change in (("--limit-usd", "1000"), ("--limit-usd", "none"),
                       ("--limit-reset", "monthly"), ("--limit-usd", "1000"),
                       ("--limit-usd", "none", "--limit-reset", "never"),
                       ("--limit-usd", "1000")):  # fmt: skip
            time.sleep(0.3)
            run.box.cli("keys", "update", run.key_id[:13], *change)

    run, answered = changed_under_load(box_factory, fake, make_changes)
    busy, key, key_id = run.box, run.key, run.key_id
    assert answered and set(answered) == {200}
    total = busy.query(
        "SELECT COALESCE(SUM(u.cost_nanos), 0) FROM usage_record u JOIN api_key k ON "
        "k.id = u.api_key_id WHERE k.uuid = ?", key_id,
    )[0][0]  # fmt: skip
    total = int(total)  # PostgreSQL: a Decimal
    assert total == len(answered) * EACH
    assert key_money(busy, key_id) == (total, 0)  # a cap again: its row holds the spend
    assert spent_usd(busy, key, key_id) == pytest.approx(total / 1e9)
    busy.cli("doctor")
