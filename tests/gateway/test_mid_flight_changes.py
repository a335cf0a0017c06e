"""The operator changing the catalog, the provider, the key or the account while a call is
held at the upstream, through a real box and its CLI: the call finishes at the prices and
rules of its admission, its charge never exceeds its hold, nothing leaks, `doctor` agrees."""

from __future__ import annotations

import json
import math
import threading
import time
import tomllib
from concurrent.futures import Future, ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.gateway.conftest import Box, BoxFactory, cost_nanos
from tests.ports import free_port
from tests.support import run_cli, sqlite_rows

pytestmark = pytest.mark.timeout(120)
HELD = "fake/held"
CAP = 100
HELLO = [{"role": "user", "content": "Hi"}]


@pytest.fixture(scope="module")
def box(box_factory: BoxFactory) -> Box:
    started = box_factory()
    started.cli("models", "set", HELD, "--input-per-1m", "1", "--output-per-1m", "10",
                "--provider", "fake", "--upstream-model", "held-v1")  # fmt: skip
    started.until_served(HELD)
    return started


def in_background(work: Any) -> Future[Any]:
    pool = ThreadPoolExecutor(1)
    future = pool.submit(work)
    pool.shutdown(wait=False)
    return future


def held_json(prompt: int = 10, output: int = CAP) -> Reply:
    body = json.dumps({
        "id": "chatcmpl-held", "object": "chat.completion", "created": 1, "model": "held-v1",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "late"}}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": output,
                  "total_tokens": prompt + output},
    }).encode()  # fmt: skip
    half = len(body) // 2
    return Reply(raw=[body[:half], body[half:]], pause_after=1, content_type="application/json")


def held_stream(prompt: int = 10, output: int = CAP) -> Reply:
    def chunk(delta: dict[str, Any], finish: str | None = None, usage: Any = None) -> bytes:
        event = {
            "id": "c1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "held-v1",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        if usage is not None:
            event = {**event, "choices": [], "usage": usage}
        return b"data: " + json.dumps(event).encode() + b"\n\n"

    usage = {"prompt_tokens": prompt, "completion_tokens": output, "total_tokens": prompt + output}
    parts = [
        chunk({"role": "assistant", "content": "one"}),
        chunk({"content": " two"}),
        chunk({}, "stop"),
        chunk({}, usage=usage),
        b"data: [DONE]\n\n",
    ]
    return Reply(raw=parts, pause_after=2)


def in_flight(
    box: Box, fake: FakeOpenAI, key: str, reply: Reply, stream: bool = False, **extra: Any
) -> Future[httpx.Response]:
    fake.paused.clear()
    fake.resume.clear()
    fake.push(reply)
    body = {"model": HELD, "messages": HELLO, "max_tokens": CAP, "stream": stream, **extra}
    if stream:
        body["stream_options"] = {"include_usage": True}
    answer = in_background(lambda: box.http(key).post("/v1/chat/completions", json=body))
    assert fake.paused.wait(15)
    return answer


def last_usage(box: Box, email: str) -> dict[str, Any]:
    rows = box.query(
        "SELECT u.id, u.cost_nanos, u.hold_nanos, u.input_per_1m_nanos, u.output_per_1m_nanos,"
        ' u.status, u.upstream_model FROM usage_record u JOIN "user" s ON s.id = u.user_id'
        " WHERE s.email = ? ORDER BY u.created_at DESC LIMIT 1",
        email,
    )
    names = ("id", "cost", "hold", "in", "out", "status", "upstream")
    return dict(zip(names, rows[0], strict=True))


@pytest.mark.parametrize("stream", [False, True])
def test_a_price_raised_mid_flight_is_not_charged_to_the_call_admitted_before(
    box: Box, fake: FakeOpenAI, stream: bool
) -> None:
    email, key = box.new_user("5")
    reply = held_stream() if stream else held_json()
    answer = in_flight(box, fake, key, reply, stream)
    box.cli("models", "set", HELD, "--input-per-1m", "100", "--output-per-1m", "1000",
            "--upstream-model", "held-v2")  # fmt: skip
    fake.resume.set()
    assert answer.result(30).status_code == 200
    row = last_usage(box, email)
    assert row["cost"] == cost_nanos(10, CAP, "1", "10")
    assert (row["in"], row["out"], row["upstream"]) == (10**9, 10 * 10**9, "held-v1")
    assert row["cost"] <= row["hold"]
    assert box.balance(email) == (5 * 10**9 - row["cost"], 0)
    box.cli("models", "set", HELD, "--input-per-1m", "1", "--output-per-1m", "10",
            "--upstream-model", "held-v1")  # fmt: skip
    box.until_reloaded()  # the next test's call is priced as the module's box set it
    box.cli("doctor")


def failing_in_flight(box: Box, fake: FakeOpenAI, key: str, model: str) -> Future[httpx.Response]:
    """A call whose first attempt is held at the upstream, which then answers 500 (a retry on
    another key would follow)."""
    fake.paused.clear()
    fake.resume.clear()
    failing = b'{"error": {"message": "overloaded", "type": "server_error"}}'
    fake.push(Reply(status=500, raw=[b"", failing], pause_after=1,
                    content_type="application/json"))  # fmt: skip
    body = {"model": model, "messages": HELLO, "max_tokens": CAP}
    answer = in_background(lambda: box.http(key).post("/v1/chat/completions", json=body))
    assert fake.paused.wait(15)
    return answer


def test_a_retry_after_the_provider_moved_sends_no_new_key_to_the_old_address(
    box: Box, fake: FakeOpenAI
) -> None:
    """The operator moves a provider to another address with another key while a call waits on
    the old one: the key for the new address must never go to the old one (a retry of the
    call, after the old address failed, took the new key from the catalog and sent it to the
    address of the call's admission)."""
    box.cli("providers", "add", "moving", "--kind", "openai", "--base-url", fake.base_url,
            "--key", "sk-old-address-key")  # fmt: skip
    box.cli("models", "set", "moving/m", "--input-per-1m", "1", "--output-per-1m", "10")
    box.until_served("moving/m")
    email, key = box.new_user("5")
    answer = failing_in_flight(box, fake, key, "moving/m")
    old_key = box.query("SELECT k.id FROM provider_key k JOIN provider p ON p.id = k.provider_id"
                        " WHERE p.name = 'moving'")[0][0]  # fmt: skip
    box.cli("providers", "update", "moving", "--base-url", f"http://127.0.0.1:{free_port()}/v1")
    box.cli("providers", "key-add", "moving", "--key", "sk-new-address-key")
    box.cli("providers", "key-remove", "moving", str(old_key))
    box.until_reloaded()
    fake.resume.set()
    response = answer.result(30)
    sent = [r.api_key for r in fake.requests if r.path == "/v1/chat/completions"]
    assert "sk-new-address-key" not in sent
    assert response.status_code == 502, response.text
    assert box.balance(email) == (5 * 10**9, 0)
    box.cli("models", "remove", "moving/m")
    box.cli("doctor")


def test_a_copy_made_while_a_call_is_in_flight_holds_nothing_for_it(
    box: Box, fake: FakeOpenAI, tmp_path: Path
) -> None:
    """`db copy` run while serve still serves (the README says to stop it first): the call in
    flight settles in the source, never in the copy, whose user had its reservation blocked
    (up to 6 hours for a copy served on another machine, or while the source's box lives).
    The copy holds nothing for it, and says how many calls were in flight."""
    email, key = box.new_user("5")
    answer = in_flight(box, fake, key, held_json())
    target = box.db_path.parent / f"copy-{tmp_path.name}.db"  # beside its secret_key file
    copied = run_cli(box.config, "db", "copy", "--to", f"sqlite:///{target}")
    fake.resume.set()
    assert answer.result(30).status_code == 200
    assert copied.returncode == 0, copied.stderr
    assert "1 call was in flight" in copied.stderr
    assert sqlite_rows(target, "SELECT COUNT(*) FROM hold") == [(0,)]
    user = "SELECT balance_nanos, held_nanos FROM user WHERE email = ?"
    assert sqlite_rows(target, user, (email,)) == [(5 * 10**9, 0)]
    copy_only = {"CODELACE_DATABASE_PATH": str(target)}  # and the secret its keys need:
    server = tomllib.loads(box.config.read_text())["server"]  # on PostgreSQL the config's
    if "secret_key" in server:  # (on SQLite the secret_key file beside the copy)
        copy_only["CODELACE_SERVER_SECRET_KEY"] = server["secret_key"]
    doctor = run_cli(None, "doctor", env=copy_only)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr


def test_a_provider_disabled_mid_flight_is_called_again_by_no_retry(
    box: Box, fake: FakeOpenAI
) -> None:
    """`providers disable` while a call's first attempt is under way (the SPEC: a catalog
    change is seen within a second): its retry, a new call to the provider after the first
    failed, was still sent to the disabled provider. The failure is the answer, costing
    nothing."""
    box.cli("providers", "add", "stopping", "--kind", "openai", "--base-url", fake.base_url,
            "--key", "sk-stopping-key-1")  # fmt: skip
    box.cli("providers", "key-add", "stopping", "--key", "sk-stopping-key-2")
    box.cli("models", "set", "stopping/m", "--input-per-1m", "1", "--output-per-1m", "10")
    box.until_served("stopping/m")
    email, key = box.new_user("5")
    before = len(fake.requests)
    answer = failing_in_flight(box, fake, key, "stopping/m")
    box.cli("providers", "disable", "stopping")
    box.until_reloaded()
    fake.resume.set()
    response = answer.result(30)
    assert len(fake.requests) == before + 1, [r.api_key for r in fake.requests[before:]]
    assert response.status_code == 502, response.text
    assert box.balance(email) == (5 * 10**9, 0)
    box.cli("doctor")


def test_credit_taken_back_mid_flight_never_takes_what_the_call_holds(
    box: Box, fake: FakeOpenAI
) -> None:
    """`credit EMAIL -X` while a call is held: what the call reserved cannot be taken (the
    balance would no longer cover its charge); what is free can, and the call then settles
    within the balance left, `doctor` agreeing."""
    email, key = box.new_user("5")
    answer = in_flight(box, fake, key, held_json())
    balance, held = box.balance(email)
    assert held > 0
    free = (balance - held) / 1e9
    taken = run_cli(box.config, "credit", email, f"-{free + 1e-9:.9f}", "--reason", "refund")
    assert taken.returncode == 1
    assert "below what requests in flight reserved" in taken.stderr
    assert box.balance(email) == (balance, held)
    box.cli("credit", email, f"-{free:.9f}", "--reason", "refund")
    assert box.balance(email) == (held, held)
    fake.resume.set()
    assert answer.result(30).status_code == 200
    cost = last_usage(box, email)["cost"]
    assert box.balance(email) == (held - cost, 0)
    box.cli("doctor")


def test_a_refusal_at_the_address_a_provider_left_does_not_flag_its_key(
    box: Box, fake: FakeOpenAI
) -> None:
    """The operator points a provider at a new address (its key unchanged) while a call waits
    on the old one, which then refuses the key (401, the old proxy retired): that refusal says
    nothing of the key at the new address. It was probed at the old address, flagged, and the
    provider's every model answered 503 until the scheduled re-probe (5 minutes)."""
    new_home = FakeOpenAI().start()
    try:
        box.cli("providers", "add", "mover", "--kind", "openai", "--base-url", fake.base_url,
                "--key", "sk-mover-key-0001")  # fmt: skip
        box.cli("models", "set", "mover/m", "--input-per-1m", "1", "--output-per-1m", "10")
        box.until_served("mover/m")
        email, key = box.new_user("5")
        fake.probe_status["sk-mover-key-0001"] = 401  # the old address refuses it from now on
        fake.paused.clear()
        fake.resume.clear()
        refusal = b'{"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error", "code": "invalid_api_key"}}'  # noqa: E501
        fake.push(Reply(status=401, raw=[b"", refusal], pause_after=1,
                        content_type="application/json"))  # fmt: skip
        body = {"model": "mover/m", "messages": HELLO, "max_tokens": CAP}
        answer = in_background(lambda: box.http(key).post("/v1/chat/completions", json=body))
        assert fake.paused.wait(15)
        box.cli("providers", "update", "mover", "--base-url", new_home.base_url)
        box.until_reloaded()
        fake.resume.set()
        assert answer.result(30).status_code == 503
        flagged = box.query("SELECT k.failing FROM provider_key k JOIN provider p"
                            " ON p.id = k.provider_id WHERE p.name = 'mover'")  # fmt: skip
        assert flagged == [(0,)]
        after = box.http(key).post("/v1/chat/completions", json=body)
        assert after.status_code == 200, after.text
        assert [r.api_key for r in new_home.requests] == ["sk-mover-key-0001"]
        assert box.balance(email)[1] == 0
    finally:
        new_home.stop()
    box.cli("models", "remove", "mover/m")
    box.cli("doctor")


def test_prices_changed_under_load_on_two_workers_charge_each_call_as_its_row_says(
    box_factory: BoxFactory, fake: FakeOpenAI
) -> None:
    """Streamed and plain calls on two workers while the operator changes the prices (cache
    price too) again and again: every usage row's charge is its tokens at the prices it
    records (one price list, never a mix), within its hold; nothing stays held; doctor agrees."""
    busy = box_factory("--workers", "2")
    busy.cli("models", "set", HELD, "--input-per-1m", "1", "--output-per-1m", "10",
             "--provider", "fake")  # fmt: skip
    busy.until_served(HELD, workers=2)
    fake.default = Reply(completion_tokens_from_cap=True, prompt_tokens=40, cached_tokens=30,
                         delay_before=0.05)  # fmt: skip
    email, key = busy.new_user("50")
    stop = threading.Event()

    def load(stream: bool) -> list[int]:
        body: dict[str, Any] = {"model": HELD, "messages": HELLO, "max_tokens": 50}
        if stream:
            body |= {"stream": True, "stream_options": {"include_usage": True}}
        with busy.http(key) as http:
            return [http.post("/v1/chat/completions", json=body).status_code
                    for _ in iter(stop.is_set, True)]  # fmt: skip

    senders = [in_background(lambda s=s: load(s)) for s in (False, True, False, True)]
    try:
        for step in range(5):
            price = str(step + 2)
            busy.cli("models", "set", HELD, "--input-per-1m", price, "--output-per-1m",
                     str(10 * (step + 2)), "--cache-read-per-1m", str(step + 1))  # fmt: skip
            time.sleep(0.3)
    finally:
        stop.set()
    statuses = [status for sender in senders for status in sender.result(60)]
    assert statuses and set(statuses) == {200}
    rows = busy.query(
        "SELECT input_tokens, output_tokens, cache_read_tokens, input_per_1m_nanos,"
        " output_per_1m_nanos, cache_read_per_1m_nanos, cost_nanos, hold_nanos FROM usage_record"
    )
    assert len(rows) == len(statuses)
    for tokens_in, tokens_out, read, p_in, p_out, p_read, cost, hold in rows:
        exact = Fraction((tokens_in - read) * p_in + tokens_out * p_out + read * p_read, 10**6)
        assert cost == math.ceil(exact) and cost <= hold
        assert p_out == 10 * p_in  # the prices of one `models set`, never a mix
    assert len({row[3] for row in rows}) > 1  # the prices did change under the calls
    assert busy.balance(email)[1] == 0
    busy.cli("doctor")
