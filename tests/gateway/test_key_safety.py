"""One user cannot take a provider away from the others (issue 20, items 3 and 6): a refusal
of the content is the user's 400 and touches no key; a key leaves the rotation only when a probe
confirms the upstream refuses it, and returns when a scheduled probe works; a malformed
Retry-After never breaks the failover."""

from __future__ import annotations

import email.utils
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import openai
import pytest

from tests.fakes.openai_upstream import HUGE, MISSING_SCOPE, TRICKLE, FakeOpenAI, Reply
from tests.gateway.conftest import IN_PRICE, MODEL, OUT_PRICE, Box, BoxFactory, cost_nanos
from tests.support import eventually

pytestmark = pytest.mark.timeout(60)
HELLO = [{"role": "user", "content": "Say hello"}]
FIRST, SECOND = "sk-first-key-00000001", "sk-second-key-0000002"
# OpenRouter's answer when a model's moderation flags the input.
MODERATION = {
    "code": 403,
    "message": "gpt-test requires moderation on OpenAI. Your input was flagged for "
    '"harassment". No credits were charged.',
    "metadata": {"reasons": ["harassment"], "flagged_input": "Say hello", "provider_name": "X"},
}


def failing_flags(box: Box) -> list[bool]:
    listed = json.loads(box.cli("providers", "list", "--json"))
    return [k["failing"] for k in listed[0]["keys"]]


def test_a_moderation_403_is_the_users_400_and_leaves_every_key_in_rotation(
    box_factory: BoxFactory, fake: FakeOpenAI
) -> None:
    box = box_factory(keys=(FIRST, SECOND), gateway={"max_retries": 2})
    hostile_email, hostile = box.new_user("1")
    start = box.balance(hostile_email)[0]
    fake.push(Reply(status=403, error=MODERATION))
    with pytest.raises(openai.BadRequestError) as caught:
        box.sdk(hostile).chat.completions.create(model=MODEL, messages=HELLO)
    assert caught.value.status_code == 400
    assert caught.value.code == "content_refused"
    assert "Your input was flagged" in caught.value.message
    assert len(fake.requests) == 1, "a refusal of the content is not retried on another key"
    assert fake.probes == [], "and no key was suspected"
    assert box.balance(hostile_email) == (start, 0)
    assert failing_flags(box) == [False, False]
    _, other = box.new_user("1")
    for _ in range(2):  # both keys still serve the others
        done = box.sdk(other).chat.completions.create(model=MODEL, messages=HELLO)
        assert done.choices[0].message.content == "Hello from the fake upstream."
    assert {r.api_key for r in fake.requests[1:]} == {FIRST, SECOND}


def test_a_403_about_the_content_that_says_key_leaves_a_restricted_key_in_rotation(
    box_factory: BoxFactory, fake: FakeOpenAI
) -> None:
    """A content refusal that happens to say "key" is suspected of blaming the key, so the key
    is probed; a restricted key, which may not list models, must pass that probe (OpenAI's 401
    `missing_scope` is no refusal of the key), else one user's prompt takes it away for good."""
    box = box_factory(keys=(FIRST, SECOND), gateway={"max_retries": 2})
    fake.probe_status[FIRST] = MISSING_SCOPE
    email, key = box.new_user("1")
    start = box.balance(email)[0]
    flagged = {"message": "The key phrase in your prompt was flagged.", "type": "invalid_request"}
    fake.push(Reply(status=403, error=flagged))
    done = box.sdk(key).chat.completions.create(model=MODEL, messages=HELLO)
    assert done.choices[0].message.content == "Hello from the fake upstream."
    assert [r.api_key for r in fake.requests] == [FIRST, SECOND] and fake.probes == [FIRST]
    assert failing_flags(box) == [False, False]
    assert box.balance(email) == (start - cost_nanos(11, 5, IN_PRICE, OUT_PRICE), 0)
    assert "it may not list models" in box.server.log_text()


def test_a_401_whose_probe_works_leaves_the_key_in_rotation(
    box_factory: BoxFactory, fake: FakeOpenAI
) -> None:
    box = box_factory(keys=(FIRST, SECOND), gateway={"max_retries": 2})
    email, key = box.new_user("1")
    start = box.balance(email)[0]
    fake.push(Reply(status=401, error={"message": "Unauthorized", "type": "auth"}))
    done = box.sdk(key).chat.completions.create(model=MODEL, messages=HELLO)
    assert done.choices[0].message.content == "Hello from the fake upstream."
    assert [r.api_key for r in fake.requests] == [FIRST, SECOND]
    assert fake.probes == [FIRST]
    assert failing_flags(box) == [False, False]
    assert box.balance(email) == (start - cost_nanos(11, 5, IN_PRICE, OUT_PRICE), 0)
    assert "it stays in rotation" in box.server.log_text()
    box.sdk(key).chat.completions.create(model=MODEL, messages=HELLO)
    assert fake.requests[-1].api_key == FIRST, "the first key is still used"


def test_a_confirmed_401_flags_the_key_and_a_scheduled_probe_brings_it_back(
    box_factory: BoxFactory, fake: FakeOpenAI
) -> None:
    box = box_factory(keys=(FIRST, SECOND), gateway={"max_retries": 0, "key_probe_sec": 0.3})
    fake.key_status[FIRST] = fake.probe_status[FIRST] = 401
    _, key = box.new_user("1")
    done = box.sdk(key).chat.completions.create(model=MODEL, messages=HELLO)
    assert done.choices[0].message.content == "Hello from the fake upstream."
    assert [r.api_key for r in fake.requests] == [FIRST, SECOND], "no retry was spent"
    assert failing_flags(box) == [True, False]
    box.server.wait_for_log(r"provider key 1 \(sk-…0001\) flagged as failing")
    box.server.wait_for_log(r"provider key 1 \(sk-…0001\) of fake still fails its probe")
    fake.key_status.clear()
    fake.probe_status.clear()
    box.server.wait_for_log(r"provider key 1 \(sk-…0001\) of fake is back in rotation")
    assert failing_flags(box) == [False, False]
    sent = len(fake.requests)
    for _ in range(2):
        box.sdk(key).chat.completions.create(model=MODEL, messages=HELLO)
    assert {r.api_key for r in fake.requests[sent:]} == {FIRST, SECOND}
    assert FIRST not in box.server.log_text() and SECOND not in box.server.log_text()


def test_a_flagged_key_is_probed_once_a_period_whatever_the_number_of_workers(
    box_factory: BoxFactory, fake: FakeOpenAI
) -> None:
    """Every worker probed every flagged key each `key_probe_sec`: with three workers the
    provider got three requests with a key it refuses each period (and the log three lines),
    all at about the same moment. One worker (the lead, as for the upkeep) probes now."""
    box = box_factory("--workers", "3", keys=(FIRST, SECOND),
                      gateway={"max_retries": 0, "key_probe_sec": 0.5})  # fmt: skip
    box.server.wait_for_log(r"Worker ready \[(\d+)\]", 3)
    fake.key_status[FIRST] = fake.probe_status[FIRST] = 401
    _, key = box.new_user("1")
    box.sdk(key).chat.completions.create(model=MODEL, messages=HELLO)
    assert failing_flags(box) == [True, False]
    box.server.wait_for_log(r"provider key 1 \(sk-…0001\) of fake still fails its probe")
    fake.probes.clear()
    began = time.monotonic()
    time.sleep(3.0)
    eventually(lambda: fake.probes.count(FIRST) >= 3, "the lead's probes")  # (loaded: later)
    probes, took = fake.probes.count(FIRST), time.monotonic() - began
    assert probes <= took / 0.5 + 2, fake.probes  # one worker's pace, not three's
    fake.key_status.clear()
    fake.probe_status.clear()
    box.server.wait_for_log(r"provider key 1 \(sk-…0001\) of fake is back in rotation")
    assert failing_flags(box) == [False, False]
    time.sleep(1.0)  # every worker's catalog has it back (reloaded every half second)
    sent = len(fake.requests)
    for _ in range(6):
        box.sdk(key).chat.completions.create(model=MODEL, messages=HELLO)
    assert {r.api_key for r in fake.requests[sent:]} == {FIRST, SECOND}


@pytest.fixture(scope="module")
def two_keys(box_factory: BoxFactory) -> Box:
    return box_factory(keys=(FIRST, SECOND), gateway={"max_retries": 1})


@pytest.mark.parametrize(
    "retry_after",
    ["1e400", "inf", "nan", "-5", "99999999999", "soon", "Wed, 21 Oct 2026 07:28:00 GMT"],
)
def test_a_malformed_retry_after_is_ignored_and_the_next_key_answers(
    two_keys: Box, fake: FakeOpenAI, retry_after: str
) -> None:
    fake.push(
        Reply(status=429, error={"message": "slow down"}, headers={"retry-after": retry_after})
    )
    _, key = two_keys.new_user("1")
    done = two_keys.sdk(key).chat.completions.create(model=MODEL, messages=HELLO)
    assert done.choices[0].message.content == "Hello from the fake upstream."
    assert sorted(r.api_key for r in fake.requests) == [FIRST, SECOND]


@pytest.mark.parametrize("retry_after", ["1e400", "99999999999"])
def test_a_malformed_retry_after_on_the_last_try_is_a_429_with_a_sane_wait(
    two_keys: Box, fake: FakeOpenAI, retry_after: str
) -> None:
    fake.default = Reply(
        status=429, error={"message": "slow down"}, headers={"retry-after": retry_after}
    )
    _, key = two_keys.new_user("1")
    with pytest.raises(openai.RateLimitError) as caught:
        two_keys.sdk(key).chat.completions.create(model=MODEL, messages=HELLO)
    assert caught.value.response.headers["retry-after"] == "1"
    assert len(fake.requests) == 2


def test_an_http_date_retry_after_is_passed_on_as_the_seconds_until_it(
    two_keys: Box, fake: FakeOpenAI
) -> None:
    """RFC 9110 lets Retry-After be an HTTP-date. A provider asking for a wait until a moment
    two minutes ahead had the client told `Retry-After: 1`: the SDK came back a second later,
    into the same limit, as many times as it retries. A date is now the seconds until it (one
    already past: 1; a day or more ahead: not plausible, 1)."""
    ahead = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    fake.default = Reply(status=429, error={"message": "slow down"}, headers={"retry-after": ahead})
    _, key = two_keys.new_user("1")
    with pytest.raises(openai.RateLimitError) as caught:
        two_keys.sdk(key).chat.completions.create(model=MODEL, messages=HELLO)
    assert 115 <= int(caught.value.response.headers["retry-after"]) <= 120


def test_a_disabled_providers_flagged_keys_are_not_probed(
    box_factory: BoxFactory, fake: FakeOpenAI
) -> None:
    """An operator who disabled a provider (its account closed, its address no longer
    trusted) still had the box send its flagged keys to its address every key_probe_sec, for
    as long as it stayed disabled. Its keys are probed again once it is enabled."""
    box = box_factory(keys=(FIRST, SECOND), gateway={"max_retries": 0, "key_probe_sec": 0.3})
    fake.key_status[FIRST] = fake.probe_status[FIRST] = 401
    _, key = box.new_user("1")
    box.sdk(key).chat.completions.create(model=MODEL, messages=HELLO)
    box.server.wait_for_log(r"provider key 1 \(sk-…0001\) of fake still fails its probe")
    box.cli("providers", "disable", "fake")
    time.sleep(0.5)  # a probe already under way ends
    fake.probes.clear()
    time.sleep(1.5)
    assert fake.probes == [], "a disabled provider's keys were sent to it"
    box.cli("providers", "enable", "fake")
    fake.key_status.clear()
    fake.probe_status.clear()
    box.server.wait_for_log(r"provider key 1 \(sk-…0001\) of fake is back in rotation")


def test_a_probe_answered_a_byte_at_a_time_is_given_up(
    box_factory: BoxFactory, fake: FakeOpenAI
) -> None:
    """An upstream whose model list came a byte a second never reached the probe's timeout
    (httpx counts it between two bytes): the scheduled probes waited on it for as long as it
    went on (no other flagged key probed meanwhile), and so did a call whose refusal it was
    confirming. The whole probe now gets its timeout (connect timeout + 10 s)."""
    box = box_factory(
        keys=(FIRST, SECOND),
        gateway={"max_retries": 0, "key_probe_sec": 0.3, "connect_timeout_sec": 1},
    )
    fake.key_status[FIRST] = fake.probe_status[FIRST] = 401
    _, key = box.new_user("1")
    box.sdk(key).chat.completions.create(model=MODEL, messages=HELLO)
    assert failing_flags(box) == [True, False]
    fake.probe_status[FIRST] = TRICKLE
    box.server.wait_for_log(
        r"of fake still fails its probe: no answer from \S+ within 11 s", wait=25
    )


def _peak_memory_mib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
    raise AssertionError("no VmHWM")


def test_a_probe_answered_with_a_huge_body_reads_only_its_start(
    box_factory: BoxFactory, fake: FakeOpenAI
) -> None:
    """A key probe read the upstream's whole answer into memory, however big (256 MiB here),
    in the serving process, though calls are bounded by gateway.max_upstream_body_bytes: the
    verdict needs its status and the start of its body only."""
    if not Path("/proc/self/status").exists():
        pytest.skip("reads the server's peak memory from /proc")
    box = box_factory(keys=(FIRST, SECOND), gateway={"max_retries": 2})
    assert box.server.process is not None
    _, key = box.new_user("1")
    box.sdk(key).chat.completions.create(model=MODEL, messages=HELLO)
    before = _peak_memory_mib(box.server.process.pid)
    fake.push(Reply(status=401, error={"message": "Unauthorized", "type": "auth"}))
    fake.probe_status[FIRST] = fake.probe_status[SECOND] = HUGE
    done = box.sdk(key).chat.completions.create(model=MODEL, messages=HELLO)
    assert done.choices[0].message.content == "Hello from the fake upstream."
    assert failing_flags(box) == [False, False], "its probe worked: the key stays"
    assert fake.probes, "no probe"
    grown = _peak_memory_mib(box.server.process.pid) - before
    assert grown < 64, f"the probe took {grown} MiB more"


def test_a_key_the_server_secret_cannot_decrypt_is_logged_once_not_at_every_reload(
    box_factory: BoxFactory,
) -> None:
    """A box started with another server.secret_key than its provider keys were stored with (a
    second box of a team set up with the wrong secret) logged the unusable key at every reload
    of its catalog: an ERROR line twice a second for as long as it ran (on PostgreSQL a task
    reloads every half second; on SQLite each lookup after half a second). Once per key is
    enough; each request still says the provider is unavailable."""
    box = box_factory(env={"CODELACE_SERVER_SECRET_KEY": "another-secret-than-the-keys-had-0000"})
    _, key = box.new_user("1")
    for _ in range(4):
        with pytest.raises(openai.APIStatusError) as caught:
            box.sdk(key).chat.completions.create(model=MODEL, messages=HELLO)
        assert caught.value.status_code == 503
        time.sleep(0.6)  # past the catalog's reload time
    assert box.server.log_text().count("provider key 1 is unusable") == 1


@pytest.mark.parametrize("waits", [("5", "60"), ("60", "5")])
def test_every_key_limited_is_a_429_with_the_shortest_wait_of_its_keys(
    two_keys: Box, fake: FakeOpenAI, waits: tuple[str, str]
) -> None:
    """When every key answers 429, the client should come back when the first of them is free
    again (the box then fails over to it), not when the last one tried is: told 60 s where one
    key was free after 5 s, an SDK waited twelve times too long."""
    limited = {"message": "slow down", "type": "requests", "code": "rate_limit_exceeded"}
    fake.push(*(Reply(status=429, error=limited, headers={"retry-after": w}) for w in waits))
    _, key = two_keys.new_user("1")
    with pytest.raises(openai.RateLimitError) as caught:
        two_keys.sdk(key).chat.completions.create(model=MODEL, messages=HELLO)
    assert sorted(r.api_key for r in fake.requests) == [FIRST, SECOND]
    assert caught.value.response.headers["retry-after"] == "5"


def test_a_key_refused_on_a_call_is_not_tried_again_by_that_call(
    box_factory: BoxFactory, fake: FakeOpenAI
) -> None:
    """A key refused (401) whose probe works stays in rotation, and the call goes on to the
    next key; when that one failed too (a 500), the last retry went back to the refused key,
    which refused again: the client got a 503 `provider_key_rejected` though the other key
    was fine and a retry was left for it."""
    box = box_factory(keys=(FIRST, SECOND), gateway={"max_retries": 2})
    fake.key_status[FIRST] = 401  # refused on calls, though its probe (the model list) works
    fake.push(Reply(status=500, error={"message": "boom", "type": "server_error"}))
    _, key = box.new_user("1")
    done = box.sdk(key).chat.completions.create(model=MODEL, messages=HELLO)
    assert done.choices[0].message.content == "Hello from the fake upstream."
    assert [r.api_key for r in fake.requests] == [FIRST, SECOND, SECOND]
    assert fake.probes == [FIRST]
