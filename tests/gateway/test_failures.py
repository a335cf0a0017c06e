"""Upstream failures through a real box: 5xx, 429, 4xx, timeouts, connections dropped or
refused, errors inside a started stream, keep-alive comments, and a client that leaves
mid-stream (charged for what was produced, the upstream connection closed)."""

from __future__ import annotations

import json
import time

import httpx
import openai
import pytest

from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.gateway.conftest import IN_PRICE, MODEL, OUT_PRICE, Box, BoxFactory, cost_nanos
from tests.support import TLS, free_port

pytestmark = pytest.mark.timeout(60)
HELLO = [{"role": "user", "content": "Say hello"}]
RETRIES = 2


@pytest.fixture(scope="module")
def box(box_factory: BoxFactory) -> Box:
    return box_factory(
        gateway={"read_timeout_sec": 1.0, "connect_timeout_sec": 1.0, "max_retries": RETRIES},
        env={"CODELACE_SSE_KEEPALIVE_SEC": "0.2"},
    )


def only_row(box: Box, email: str) -> dict[str, object]:
    rows = box.query(
        'SELECT request_id FROM usage_record u JOIN "user" s ON s.id = u.user_id WHERE s.email = ?',
        email,
    )
    assert len(rows) == 1
    return box.usage_row(rows[0][0])


def assert_free_failure(box: Box, email: str, start: int, code: str) -> None:
    """A failed call costs nothing, releases its hold and leaves an error row."""
    assert box.balance(email) == (start, 0)
    row = only_row(box, email)
    assert (row["status"], row["cost_nanos"], row["error_code"]) == ("error", 0, code)


def test_upstream_500_is_502_after_retries(box: Box, fake: FakeOpenAI) -> None:
    email, key = box.new_user("1")
    start = box.balance(email)[0]
    fake.default = Reply(status=500)
    with pytest.raises(openai.InternalServerError) as caught:
        box.sdk(key).chat.completions.create(model=MODEL, messages=HELLO)
    assert caught.value.status_code == 502
    assert "HTTP 500" in caught.value.message
    assert len(fake.requests) == 1 + RETRIES
    assert_free_failure(box, email, start, "upstream_error")


def test_a_retry_that_succeeds_is_charged_once(box: Box, fake: FakeOpenAI) -> None:
    email, key = box.new_user("1")
    start = box.balance(email)[0]
    fake.push(Reply(status=503), Reply())
    done = box.sdk(key).chat.completions.create(model=MODEL, messages=HELLO)
    assert done.choices[0].message.content == "Hello from the fake upstream."
    assert len(fake.requests) == 2
    assert box.balance(email) == (start - cost_nanos(11, 5, IN_PRICE, OUT_PRICE), 0)


def test_upstream_429_is_relayed_with_retry_after(box: Box, fake: FakeOpenAI) -> None:
    email, key = box.new_user("1")
    start = box.balance(email)[0]
    error = {"message": "Rate limit reached for requests", "type": "requests",
             "code": "rate_limit_exceeded"}  # fmt: skip
    fake.default = Reply(status=429, error=error, headers={"retry-after": "7"})
    with pytest.raises(openai.RateLimitError) as caught:
        box.sdk(key).chat.completions.create(model=MODEL, messages=HELLO)
    assert caught.value.response.headers["retry-after"] == "7"
    assert "Rate limit reached for requests" in caught.value.message
    assert len(fake.requests) == 1  # its one key, asked again at once, would answer the same
    assert_free_failure(box, email, start, "rate_limited")


@pytest.mark.parametrize(
    ("headers", "said"),
    [({"retry-after-ms": "2500"}, "3"), ({"retry-after": "2.5"}, "3"),
     ({"retry-after-ms": "7000", "retry-after": "7"}, "7"), ({"retry-after-ms": "junk"}, "1")],
)  # fmt: skip
def test_an_upstream_wait_in_milliseconds_or_a_fraction_is_relayed_rounded_up(
    box: Box, fake: FakeOpenAI, headers: dict[str, str], said: str
) -> None:
    """OpenAI's `retry-after-ms` (which its SDK reads first) was ignored and a fractional
    Retry-After rounded down: a client told 1 or 2 s where the upstream asked for 2.5 came
    back too early and was refused again."""
    _, key = box.new_user("1")
    error = {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}
    fake.default = Reply(status=429, error=error, headers=headers)
    answer = httpx.post(f"{box.url}/v1/chat/completions", json={"model": MODEL, "messages": HELLO},
                        headers={"authorization": f"Bearer {key}"}, timeout=30,
                        verify=TLS)  # fmt: skip
    assert answer.status_code == 429
    assert answer.headers["retry-after"] == said


def test_upstream_400_is_relayed_and_not_retried(box: Box, fake: FakeOpenAI) -> None:
    email, key = box.new_user("1")
    start = box.balance(email)[0]
    message = "Invalid value for 'temperature': must be at most 2."
    fake.push(Reply(status=400, error={"message": message, "type": "invalid_request_error"}))
    with pytest.raises(openai.BadRequestError) as caught:
        box.sdk(key).chat.completions.create(model=MODEL, messages=HELLO, temperature=2.0)
    assert caught.value.status_code == 400
    assert caught.value.body["message"] == message  # type: ignore[index]
    assert len(fake.requests) == 1
    assert_free_failure(box, email, start, "upstream_400")


def test_slow_upstream_is_504(box: Box, fake: FakeOpenAI) -> None:
    email, key = box.new_user("1")
    start = box.balance(email)[0]
    fake.push(Reply(delay_before=6))  # far beyond the 1 s read timeout, even on a slow runner
    client = box.sdk(key)
    began = time.monotonic()
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model=MODEL, messages=HELLO)
    assert caught.value.status_code == 504
    assert time.monotonic() - began < 5  # the 1 s read timeout fired, not the upstream's answer
    assert len(fake.requests) == 1  # recorded on arrival: a timeout is not retried
    assert_free_failure(box, email, start, "upstream_timeout")
    hold = only_row(box, email)["hold_nanos"]
    assert isinstance(hold, int) and hold > 0
    box.server.wait_for_log(  # the user pays nothing; the provider may bill the operator
        rf"went silent past gateway.read_timeout_sec; .* up to the hold of {hold} nano-USD"
    )


def test_unreachable_upstream_is_502(box: Box, fake: FakeOpenAI) -> None:
    email, key = box.new_user("1")
    start = box.balance(email)[0]
    dead = f"http://127.0.0.1:{free_port()}/v1"
    box.cli(
        "providers", "add", "dead", "--kind", "openai", "--base-url", dead, "--key", "sk-dead-000"
    )
    box.cli("models", "set", "dead/m", "--input-per-1m", "1", "--output-per-1m", "1")
    time.sleep(1.0)
    with pytest.raises(openai.APIStatusError) as caught:
        box.sdk(key).chat.completions.create(model="dead/m", messages=HELLO)
    assert caught.value.status_code == 502
    assert caught.value.body["code"] == "upstream_unreachable"  # type: ignore[index]
    assert_free_failure(box, email, start, "upstream_unreachable")


@pytest.mark.parametrize(
    ("reply", "words"),
    [
        (Reply(content="one two three four five six", drop_after=3), "connection broke"),
        (Reply(content="one two three four five six", error_after=3), "mid-stream"),
        (Reply(content="one two three four five six", hang_after=3), "did not answer in time"),
    ],
    ids=["dropped", "error-event", "silent"],
)
def test_stream_failing_after_start_ends_with_error_event(
    box: Box, fake: FakeOpenAI, reply: Reply, words: str
) -> None:
    email, key = box.new_user("1")
    start = box.balance(email)[0]
    fake.push(reply)
    stream = box.sdk(key).chat.completions.create(model=MODEL, messages=HELLO, stream=True)
    received: list[str] = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "one two"  # role chunk + 2 words came before the failure
    assert words in caught.value.message
    assert box.balance(email) == (start, 0)
    row = only_row(box, email)
    assert (row["status"], row["cost_nanos"], row["stream"]) == ("error", 0, 1)


def test_keepalive_comments_while_upstream_is_silent(box: Box, fake: FakeOpenAI) -> None:
    _, key = box.new_user("1")
    fake.push(Reply(pieces=["slow", " reply"], piece_delay=0.6))
    body = {"model": MODEL, "messages": HELLO, "stream": True}
    with box.http(key) as http, http.stream("POST", "/v1/chat/completions", json=body) as response:
        raw = response.read()
    assert b": keep-alive\n\n" in raw
    assert raw.endswith(b"data: [DONE]\n\n")
    data = [e for e in raw.split(b"\n\n") if e.startswith(b"data: {")]
    text = "".join(json.loads(e[6:])["choices"][0]["delta"].get("content") or "" for e in data)
    assert text == "slow reply"


def test_client_leaving_mid_stream_pays_for_what_was_produced(box: Box, fake: FakeOpenAI) -> None:
    email, key = box.new_user("1")
    start = box.balance(email)[0]
    pieces = ["abcdefghij", "klmnopqrst", "uvwxyz0123", "never sent"]
    fake.push(Reply(pieces=pieces, hang_after=4))  # role chunk + 3 pieces, then silence
    content = json.dumps({"model": MODEL, "messages": HELLO, "stream": True}).encode()
    seen = 0
    with box.http(key) as http, http.stream("POST", "/v1/chat/completions", content=content) as r:
        request_id = r.headers["x-request-id"]
        for line in r.iter_lines():
            seen += line.startswith("data: {")
            if seen == 4:
                break
    assert fake.client_gone.wait(10), "the box must close the upstream stream"
    row = box.settled_row(request_id, wait=10)
    produced = -(-30 // 4)  # 30 characters relayed, 4 per token
    prompt = -(-len(content) // 4)
    cost = cost_nanos(prompt, produced, IN_PRICE, OUT_PRICE)
    assert (row["status"], row["estimated"], row["stream"]) == ("abandoned", 1, 1)
    assert (row["input_tokens"], row["output_tokens"], row["cost_nanos"]) == (
        prompt, produced, cost,
    )  # fmt: skip
    assert box.balance(email) == (start - cost, 0)


def test_client_leaving_before_the_answer_still_pays_for_it(box: Box, fake: FakeOpenAI) -> None:
    """The upstream answers (and bills the operator) whether or not the client waited."""
    email, key = box.new_user("1")
    start = box.balance(email)[0]
    fake.push(Reply(delay_before=0.8, prompt_tokens=13, completion_tokens=21))
    with box.http(key) as http, pytest.raises(httpx.ReadTimeout):
        http.post("/v1/chat/completions", json={"model": MODEL, "messages": HELLO}, timeout=0.3)
    row = _wait_for_settled(box, email)
    cost = cost_nanos(13, 21, IN_PRICE, OUT_PRICE)
    assert (row["status"], row["input_tokens"], row["output_tokens"]) == ("abandoned", 13, 21)
    assert (row["cost_nanos"], row["estimated"], row["error_code"]) == (cost, 0, None)
    assert box.balance(email) == (start - cost, 0)


def test_client_leaving_then_the_upstream_failing_costs_nothing(box: Box, fake: FakeOpenAI) -> None:
    email, key = box.new_user("1")
    start = box.balance(email)[0]
    fake.push(Reply(delay_before=0.8, status=400, error={"message": "bad", "type": "invalid"}))
    with box.http(key) as http, pytest.raises(httpx.ReadTimeout):
        http.post("/v1/chat/completions", json={"model": MODEL, "messages": HELLO}, timeout=0.3)
    row = _wait_for_settled(box, email)
    assert (row["status"], row["cost_nanos"]) == ("error", 0)
    assert box.balance(email) == (start, 0)


def _wait_for_settled(box: Box, email: str) -> dict[str, object]:
    """The user's only usage row, once the call settled (nothing held any more)."""
    deadline = time.monotonic() + 10
    while box.balance(email)[1] and time.monotonic() < deadline:
        time.sleep(0.05)
    return only_row(box, email)


def test_doctor_after_failures(box: Box) -> None:
    box.cli("doctor")
    assert box.query("SELECT COUNT(*) FROM hold") == [(0,)]


def test_keys_failover_and_401_key_flagged(box_factory: BoxFactory, fake: FakeOpenAI) -> None:
    bad, good, flaky = "sk-bad-key-000001", "sk-good-key-00002", "sk-flaky-key-0003"
    box = box_factory(keys=(bad, good, flaky))
    fake.key_status[bad] = fake.probe_status[bad] = 401
    fake.key_status[flaky] = 503
    email, key = box.new_user("1")
    start = box.balance(email)[0]
    client = box.sdk(key)
    for _ in range(6):
        done = client.chat.completions.create(model=MODEL, messages=HELLO)
        assert done.choices[0].message.content == "Hello from the fake upstream."
    used = [r.api_key for r in fake.requests]
    assert used.count(bad) == 1, "a refused key leaves the rotation at once"
    assert used.count(good) == 6 and used.count(flaky) >= 2
    assert box.balance(email) == (start - 6 * cost_nanos(11, 5, IN_PRICE, OUT_PRICE), 0)
    listed = json.loads(box.cli("providers", "list", "--json"))
    keys = {k["id"]: k for k in listed[0]["keys"]}
    assert [k["failing"] for k in keys.values()] == [True, False, False]
    reason = keys[min(keys)]["failure_reason"]
    assert reason.startswith("HTTP 401: ") and "refused the operator's key" not in reason
    assert bad not in box.cli("providers", "list", "--json")
    assert not any(k in box.server.log_text() for k in (bad, good, flaky)), "keys never logged"
    fake.key_status[good] = fake.probe_status[good] = 403  # "Key answered 403.": about the key
    with pytest.raises(openai.APIStatusError) as caught:  # flaky 503s, good now 403s
        client.chat.completions.create(model=MODEL, messages=HELLO)
    assert caught.value.status_code in (502, 503)
    sent_before = len(fake.requests)
    time.sleep(0.6)
    with pytest.raises(openai.APIStatusError) as again:
        client.chat.completions.create(model=MODEL, messages=HELLO)
    assert again.value.status_code in (502, 503)
    tried = [r.api_key for r in fake.requests[sent_before:]]
    assert tried and set(tried) == {flaky}, "a key refused with 403 leaves the rotation too"
    box.cli("doctor")


def test_a_provider_wanting_payment_is_503_not_the_users_402(
    box_factory: BoxFactory, fake: FakeOpenAI
) -> None:
    """OpenRouter and Anthropic answer 402 when the operator's account there cannot pay: the
    next key is tried (it may be another account's), the key stays in rotation (paying makes
    it work again), and the user sees 503, never the 402 that means their own balance."""
    broke, paid = "sk-broke-key-0001", "sk-paid-key-00002"
    box = box_factory(keys=(broke, paid))
    fake.key_status[broke] = 402
    email, key = box.new_user("1")
    start = box.balance(email)[0]
    client = box.sdk(key)
    for _ in range(2):
        done = client.chat.completions.create(model=MODEL, messages=HELLO)
        assert done.choices[0].message.content == "Hello from the fake upstream."
    used = [r.api_key for r in fake.requests]
    assert used.count(paid) == 2 and used.count(broke) >= 1
    fake.key_status[paid] = 402
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model=MODEL, messages=HELLO)
    assert caught.value.status_code == 503
    assert caught.value.code == "provider_out_of_credit"
    assert "out of credit (HTTP 402)" in caught.value.message
    listed = json.loads(box.cli("providers", "list", "--json"))
    assert [k["failing"] for k in listed[0]["keys"]] == [False, False]
    assert box.balance(email) == (start - 2 * cost_nanos(11, 5, IN_PRICE, OUT_PRICE), 0)
    assert "the provider wants paying (HTTP 402)" in box.server.log_text()


@pytest.mark.parametrize("status", [401, 400])
def test_an_upstream_echoing_the_key_never_shows_it(
    box_factory: BoxFactory, fake: FakeOpenAI, status: int
) -> None:
    """A key with no well-known prefix, echoed whole in an upstream error: masked in the
    answer, the server log and the failure reason the operator sees."""
    secret = "0123456789abcdef0123456789abcdef"
    box = box_factory(keys=(secret,))
    fake.probe_status[secret] = 401
    body = {"error": {"message": f"Invalid API key provided: {secret}.", "type": "auth"}}
    fake.push(
        Reply(status=status, raw=[json.dumps(body).encode()], content_type="application/json")
    )
    _, key = box.new_user("1")
    with pytest.raises(openai.APIStatusError) as caught:
        box.sdk(key).chat.completions.create(model=MODEL, messages=HELLO)
    assert caught.value.status_code == (503 if status == 401 else 400)
    assert "Invalid API key provided: " in caught.value.message
    assert "…cdef" in caught.value.message
    listed = box.cli("providers", "list", "--json")
    assert secret not in caught.value.message + str(caught.value.body) + listed
    assert secret not in box.server.log_text()
    assert secret not in str(box.query("SELECT failure_reason FROM provider_key"))


def test_an_upstream_echoing_the_key_where_its_message_is_cut_never_shows_its_start(
    box_factory: BoxFactory, fake: FakeOpenAI
) -> None:
    """An upstream's error text is cut (300 characters of a page that is no JSON, 500 of
    Anthropic's message) before the key is masked in it: echoed across the cut, the key's
    start was left whole in the client's 503, the log and the failure reason."""
    secret = "0123456789abcdef0123456789abcdef"
    box = box_factory(keys=(secret,))
    fake.probe_status[secret] = 401
    page = f"{'Unauthorized. ' * 20}Key: {secret}"  # the cut falls inside the key
    assert 300 - len(secret) < page.index(secret) < 300
    fake.push(Reply(status=401, raw=[page.encode()], content_type="text/plain"))
    _, key = box.new_user("1")
    with pytest.raises(openai.APIStatusError) as caught:
        box.sdk(key).chat.completions.create(model=MODEL, messages=HELLO)
    assert caught.value.status_code == 503
    assert "Key: " in caught.value.message
    shown = caught.value.message + box.cli("providers", "list", "--json")
    shown += box.server.log_text() + str(box.query("SELECT failure_reason FROM provider_key"))
    assert secret[:8] not in shown


def test_all_keys_refused_is_503(box_factory: BoxFactory, fake: FakeOpenAI) -> None:
    box = box_factory(keys=("sk-revoked-key-01",))
    fake.key_status["sk-revoked-key-01"] = fake.probe_status["sk-revoked-key-01"] = 401
    email, key = box.new_user("1")
    client = box.sdk(key)
    for _ in range(2):
        with pytest.raises(openai.APIStatusError) as caught:
            client.chat.completions.create(model=MODEL, messages=HELLO)
        assert caught.value.status_code == 503
    assert len(fake.requests) == 1
    assert box.balance(email)[1] == 0
    with httpx.Client(base_url=box.url, verify=TLS) as http:
        assert http.get("/healthz").status_code == 200


def test_client_leaving_a_stream_before_its_first_byte_still_pays_for_it(
    box: Box, fake: FakeOpenAI
) -> None:
    """The upstream took the streamed call and works on it (billing the operator) while the
    client is gone before anything came back: the box reads it on and charges its count."""
    email, key = box.new_user("1")
    start = box.balance(email)[0]
    fake.push(Reply(delay_before=0.8, prompt_tokens=13, completion_tokens=21))
    body = {"model": MODEL, "messages": HELLO, "stream": True}
    url = "/v1/chat/completions"
    with box.http(key) as http, pytest.raises(httpx.ReadTimeout):
        http.post(url, json=body, timeout=0.3)
    row = _wait_for_settled(box, email)
    cost = cost_nanos(13, 21, IN_PRICE, OUT_PRICE)
    assert (row["status"], row["input_tokens"], row["output_tokens"]) == ("abandoned", 13, 21)
    assert (row["cost_nanos"], row["estimated"], row["error_code"]) == (cost, 0, "client_closed")
    assert box.balance(email) == (start - cost, 0)
