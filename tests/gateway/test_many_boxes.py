"""Three `serve` processes on one PostgreSQL database: every promise holds across boxes.

No overspend under 100 concurrent requests spread over the boxes; several users' requests at
once on every box meet no deadlock between the boxes' batches (no error, every ledger equals
its balance); a key revoked through one box fails on the others within a second; wrong sign-in
codes typed on any box end the code after 5; and a box killed (-9) under load loses no
acknowledged debit, while the others free the credit it held.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import httpx
import pytest

from tests.accounts.conftest import console_code
from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.gateway.bursts import EACH, FLAT_MODEL, burst, burst_of_users, statuses
from tests.gateway.conftest import MODEL, MODEL_PRICES, PROVIDER_ADD, Box
from tests.pg_cluster import SHARED_SECRET
from tests.support import HEALTHY_WAIT_SEC, TLS, ServerProcess, free_port, write_config
from tests.timing import answers, seen_within

pytestmark = pytest.mark.timeout(180)
SWEEP_SEC = "1"  # the hold sweep, every second here (30 s in production)


@pytest.fixture
def boxes(tmp_path: Path, pg_url: str, fake: FakeOpenAI) -> Iterator[list[Box]]:
    """Three boxes on one fresh PostgreSQL database, wired to the fake upstream (the database
    migrated and the catalog made by the first box's CLI; then the three start at once)."""
    started: list[Box] = []
    for number in range(3):
        folder = tmp_path / f"box{number}"
        sections = {
            "server": {"host": "127.0.0.1", "port": free_port(), "secret_key": SHARED_SECRET},
            "database": {"path": str(folder / "data" / "codelace.db"), "url": pg_url},
            "auth": {"otp_verifies_per_email": 100},
        }
        folder.mkdir()
        config = write_config(folder / "codelace.toml", sections)
        box = Box(None, config, Path(), fake)  # type: ignore[arg-type]
        if number == 0:
            box.cli(*PROVIDER_ADD, fake.base_url, "--key", "sk-fake-key-0001")
            box.cli("models", "set", MODEL, *MODEL_PRICES)
            box.cli(*FLAT_MODEL)
        port = int(sections["server"]["port"])
        box.server = ServerProcess(config, port, env={"CODELACE_HOLD_SWEEP_SEC": SWEEP_SEC})
        box.server.launch()
        started.append(box)
    try:
        for box in started:
            box.server.wait_healthy(HEALTHY_WAIT_SEC)
    except BaseException:
        for box in started:
            box.server.kill()  # not left running behind the failed start
        raise
    yield started
    for box in started:
        box.server.stop()


def test_hundred_requests_over_three_boxes_never_overspend(
    boxes: list[Box], fake: FakeOpenAI
) -> None:
    first = boxes[0]
    credit = 10 * EACH + EACH // 2
    email, key = first.new_user(f"{credit / 1e9:.9f}")
    fake.default = Reply(completion_tokens_from_cap=True, delay_before=0.3)
    answered = statuses(burst(boxes, key, 100))
    assert answered.count(200) == 10, answered
    assert answered.count(402) == 90
    balance, held = first.balance(email)
    assert (balance, held) == (credit - 10 * EACH, 0)
    assert first.query("SELECT COUNT(*) FROM hold") == [(0,)]
    first.cli("doctor")


def test_many_users_at_once_on_every_box_meet_no_deadlock(
    boxes: list[Box], fake: FakeOpenAI
) -> None:
    """Each box's group commit writes several users' and keys' rows in one transaction, in
    the order its requests came; the batches of two boxes at once must not deadlock (a 503
    for every request of the aborted batch), nor count a request twice when run again."""
    first = boxes[0]
    users = [first.new_user("100") for _ in range(5)]
    fake.default = Reply(completion_tokens_from_cap=True, delay_before=0.02)
    answered = statuses(burst_of_users(boxes, [key for _, key in users], 48))
    assert answered.count(200) == len(answered) == 240, sorted(set(answered))
    for email, _ in users:
        assert first.balance(email) == (100 * 1_000_000_000 - 48 * EACH, 0)
    rows = first.query("SELECT COUNT(*), COUNT(DISTINCT request_id) FROM usage_record")
    assert rows == [(240, 240)]
    assert first.query("SELECT COUNT(*) FROM hold") == [(0,)]
    assert first.query("SELECT SUM(requests) FROM account_usage") == [(240,)]
    first.cli("doctor")


def test_a_key_revoked_through_one_box_fails_on_the_others_within_a_second(
    boxes: list[Box],
) -> None:
    _, key = boxes[0].new_user("1")
    headers = {"authorization": f"Bearer {key}"}
    for box in boxes:
        assert (
            httpx.get(f"{box.url}/api/v1/auth/me", headers=headers, verify=TLS).status_code == 200
        )
    listed = httpx.get(f"{boxes[0].url}/api/v1/auth/key", headers=headers, verify=TLS).json()
    revoked = httpx.delete(
        f"{boxes[0].url}/api/v1/auth/key/{listed[0]['id']}", headers=headers, verify=TLS
    )
    assert revoked.status_code == 204
    deadline = time.monotonic() + 1.0
    for box in boxes[1:]:
        answer = httpx.get(f"{box.url}/api/v1/auth/me", headers=headers, verify=TLS)
        assert answer.status_code == 401
    assert time.monotonic() <= deadline + 0.5  # measured loosely: the first try already fails


def test_a_catalog_change_reaches_every_box_within_a_second(boxes: list[Box]) -> None:
    boxes[0].cli("models", "set", "fake/new", "--input-per-1m", "1", "--output-per-1m", "2",
                 "--provider", "fake", "--upstream-model", "new")  # fmt: skip
    changed = time.monotonic()
    for box in boxes[1:]:
        url = f"{box.url}/v1/models/fake%2Fnew"
        get = partial(httpx.get, url, verify=TLS)
        seen_within(answers(get), changed, 1.0, "the new model reaches every box in 1 s")


def test_wrong_codes_typed_on_every_box_end_the_code_after_five(boxes: list[Box]) -> None:
    email = "otp-many@boxes.test"
    asked = httpx.post(f"{boxes[0].url}/api/v1/auth/otp/request", json={"email": email}, verify=TLS)
    assert asked.status_code == 200, asked.text
    code = console_code(boxes[0].server, email)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    answers: list[httpx.Response] = []
    lock = threading.Lock()

    def typist(box: Box) -> None:
        with httpx.Client(base_url=box.url, timeout=30, verify=TLS) as http:
            for _ in range(7):
                reply = http.post("/api/v1/auth/otp/verify", json={"email": email, "code": wrong})
                with lock:
                    answers.append(reply)

    threads = [threading.Thread(target=typist, args=(box,)) for box in boxes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    codes = [reply.json()["error"]["code"] for reply in answers]
    assert len(codes) == 21 and all(reply.status_code == 400 for reply in answers)
    assert codes.count("too_many_attempts") == 1, codes
    assert codes.count("invalid_code") == 20
    right = httpx.post(
        f"{boxes[1].url}/api/v1/auth/otp/verify", json={"email": email, "code": code}, verify=TLS
    )
    assert right.status_code == 400, "the code ended after 5 wrong tries"


def test_a_box_killed_under_load_loses_no_debit_and_its_holds_are_freed(
    boxes: list[Box], fake: FakeOpenAI
) -> None:
    first, victim = boxes[0], boxes[2]
    email, key = first.new_user("10")
    fake.default = Reply(completion_tokens_from_cap=True, delay_before=1.5)
    results: dict[str, list[int]] = {"survivors": [], "victim": []}

    def load(target: list[Box], name: str) -> None:
        results[name] = statuses(burst(target, key, 12))

    survivors = threading.Thread(target=load, args=(boxes[:2], "survivors"))
    doomed = threading.Thread(target=load, args=([victim], "victim"))
    survivors.start()
    doomed.start()
    deadline = time.monotonic() + 10
    while not first.query("SELECT COUNT(*) FROM hold")[0][0] and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    victim.server.kill()  # SIGKILL: its holds stay behind, its connections drop
    survivors.join(60)
    doomed.join(60)
    assert results["survivors"].count(200) == 12, results
    deadline = time.monotonic() + 10
    while first.query("SELECT COUNT(*) FROM hold")[0][0] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert first.query("SELECT COUNT(*) FROM hold") == [(0,)], "the dead box's holds freed"
    balance, held = first.balance(email)
    charged = first.query(
        "SELECT COALESCE(SUM(-amount_nanos), 0) FROM ledger_entry l "
        "JOIN \"user\" u ON u.id = l.user_id WHERE u.email = ? AND l.kind = 'usage'",
        email,
    )[0][0]
    assert charged >= 12 * EACH, "every answered request on the survivors was debited"
    assert (balance, held) == (10 * 1_000_000_000 - charged, 0)
    first.cli("doctor")
