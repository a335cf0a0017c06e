"""A retry goes to another provider key (the contract: "retries on another provider key"), also
when other calls take turns of the round robin meanwhile: a call's retry that landed on the key
that had just failed it, because concurrent calls moved the shared turn on, failed with a 502
while a working key sat idle. A key that answered a rate limit or out-of-credit is not tried
again by the same call: with no other key, the client gets that answer at once."""

from __future__ import annotations

import asyncio
import json

import openai
import pytest

from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.gateway.conftest import MODEL, BoxFactory

pytestmark = pytest.mark.timeout(60)
HELLO = [{"role": "user", "content": "Say hello"}]
BROKEN, GOOD = "sk-broken-key-000001", "sk-good-key-00000002"


def test_concurrent_calls_retry_on_another_key_not_the_one_that_failed(
    box_factory: BoxFactory, fake: FakeOpenAI
) -> None:
    box = box_factory(keys=(BROKEN, GOOD), gateway={"max_retries": 1})
    fake.key_status[BROKEN] = 503
    _, key = box.new_user("10")

    async def many() -> list[object]:
        async with box.async_sdk(key) as client:
            calls = [client.chat.completions.create(model=MODEL, messages=HELLO) for _ in range(24)]
            return await asyncio.gather(*calls, return_exceptions=True)

    results = asyncio.run(many())
    failures = [r for r in results if isinstance(r, Exception)]
    assert not failures, f"{len(failures)} of 24 calls failed: {failures[0]!r}"
    assert [r.api_key for r in fake.requests].count(GOOD) == 24


RATE_LIMIT = {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}
LIMITED = Reply(status=429, error=RATE_LIMIT, headers={"retry-after": "7"})
NO_QUOTA = Reply(status=429, error={
    "message": "You exceeded your current quota, please check your plan and billing details.",
    "type": "insufficient_quota", "code": "insufficient_quota"})  # fmt: skip
NO_BALANCE = Reply(status=402, error={"message": "Insufficient Balance", "type": "unknown_error"})
ANSWERS = {"rate_limit": (LIMITED, 429, "rate_limited"),
           "insufficient_quota": (NO_QUOTA, 503, "provider_out_of_credit"),
           "insufficient_balance": (NO_BALANCE, 503, "provider_out_of_credit")}  # fmt: skip


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("case", list(ANSWERS))
def test_a_single_key_that_is_limited_or_out_of_credit_is_asked_once(
    box_factory: BoxFactory, fake: FakeOpenAI, case: str, stream: bool
) -> None:
    """The same key asked again at once answers the same (a rate limit lasts its Retry-After,
    an empty account stays empty): max_retries 2 made each client call three upstream calls,
    and a client's own retries multiplied them (Codex: 60 a turn)."""
    reply, status, code = ANSWERS[case]
    box = box_factory(keys=(BROKEN,), gateway={"max_retries": 2})
    fake.default = reply
    email, key = box.new_user("1")
    start = box.balance(email)[0]
    with pytest.raises(openai.APIStatusError) as caught:
        box.sdk(key).chat.completions.create(model=MODEL, messages=HELLO, stream=stream)
    assert (caught.value.status_code, caught.value.code) == (status, code)
    if status == 429:
        assert caught.value.response.headers["retry-after"] == "7"
    assert len(fake.requests) == 1
    assert box.balance(email) == (start, 0)


@pytest.mark.parametrize("case", list(ANSWERS))
def test_a_key_limited_or_out_of_credit_leaves_the_call_to_the_other_key(
    box_factory: BoxFactory, fake: FakeOpenAI, case: str
) -> None:
    """The other key is tried, and once it failed too (a 500) the last retry goes to it again,
    never back to the key that answered a rate limit or out-of-credit."""
    box = box_factory(keys=(BROKEN, GOOD), gateway={"max_retries": 2})
    fake.push(
        ANSWERS[case][0], Reply(status=500, error={"message": "boom", "type": "server_error"})
    )
    _, key = box.new_user("1")
    done = box.sdk(key).chat.completions.create(model=MODEL, messages=HELLO)
    assert done.choices[0].message.content == "Hello from the fake upstream."
    assert [r.api_key for r in fake.requests] == [BROKEN, GOOD, GOOD]


@pytest.mark.parametrize(
    ("error", "status"), [({"code": 429, "message": "Rate limit exceeded"}, 429),
                          ({"code": 402, "message": "Insufficient Balance"}, 503)],
)  # fmt: skip
def test_a_stream_whose_first_event_says_so_is_asked_once_on_a_single_key(
    box_factory: BoxFactory, fake: FakeOpenAI, error: dict[str, object], status: int
) -> None:
    """A stream accepted (200) whose first event is a rate limit or out-of-credit goes as the
    same error status does: the single key is not asked again, the client gets the answer."""
    box = box_factory(keys=(BROKEN,), gateway={"max_retries": 2})
    fake.default = Reply(raw=[f"data: {json.dumps({'error': error})}\n\n".encode()])
    email, key = box.new_user("1")
    start = box.balance(email)[0]
    with pytest.raises(openai.APIStatusError) as caught:
        box.sdk(key).chat.completions.create(model=MODEL, messages=HELLO, stream=True)
    assert caught.value.status_code == status
    assert len(fake.requests) == 1
    assert box.balance(email) == (start, 0)


@pytest.mark.parametrize(("probe", "retries"), [(401, 2), (200, 2), (200, 1)])
def test_a_limited_key_is_the_answer_when_the_other_key_refused_the_call(
    box_factory: BoxFactory, fake: FakeOpenAI, probe: int, retries: int
) -> None:
    """The first key answers 429 (7 s), the other refuses the key (401; its probe refused too:
    flagged, or working: it stays). Every key left is one the call does not ask again (or the
    retries are spent), and the one that will answer is the limited key: the client is told to
    come back in 7 s, not that the provider's key is rejected (a 503 that /v1/messages marks
    `x-should-retry: false`)."""
    box = box_factory(keys=(BROKEN, GOOD), gateway={"max_retries": retries})
    fake.push(LIMITED)
    fake.key_status[GOOD] = 401
    fake.probe_status[GOOD] = probe
    email, key = box.new_user("1")
    start = box.balance(email)[0]
    with pytest.raises(openai.APIStatusError) as caught:
        box.sdk(key).chat.completions.create(model=MODEL, messages=HELLO)
    assert (caught.value.status_code, caught.value.code) == (429, "rate_limited")
    assert caught.value.response.headers["retry-after"] == "7"
    assert [r.api_key for r in fake.requests] == [BROKEN, GOOD]
    assert box.balance(email) == (start, 0)


def test_a_limited_key_is_the_answer_when_the_other_key_refused_the_call_in_its_stream(
    box_factory: BoxFactory, fake: FakeOpenAI
) -> None:
    """As above, the other key's refusal being its stream's first event (its probe works)."""
    box = box_factory(keys=(BROKEN, GOOD), gateway={"max_retries": 2})
    refusal = {"error": {"code": 401, "message": "Incorrect API key provided"}}
    fake.push(LIMITED, Reply(raw=[f"data: {json.dumps(refusal)}\n\n".encode()]))
    email, key = box.new_user("1")
    start = box.balance(email)[0]
    with pytest.raises(openai.APIStatusError) as caught:
        box.sdk(key).chat.completions.create(model=MODEL, messages=HELLO, stream=True)
    assert (caught.value.status_code, caught.value.code) == (429, "rate_limited")
    assert caught.value.response.headers["retry-after"] == "7"
    assert [r.api_key for r in fake.requests] == [BROKEN, GOOD]
    assert box.balance(email) == (start, 0)


def test_a_failure_between_two_rate_limits_keeps_the_shorter_wait(
    box_factory: BoxFactory, fake: FakeOpenAI
) -> None:
    """Three keys: a 429 of 5 s, a 500, a 429 of 60 s (the retries spent). The client comes back
    when the first key is free again (5 s): the 500 between them made it forget that wait."""
    box = box_factory(keys=(BROKEN, GOOD, "sk-third-key-0000003"), gateway={"max_retries": 2})
    limited = {"message": "slow down", "type": "requests", "code": "rate_limit_exceeded"}
    fake.push(
        Reply(status=429, error=limited, headers={"retry-after": "5"}),
        Reply(status=500, error={"message": "boom", "type": "server_error"}),
        Reply(status=429, error=limited, headers={"retry-after": "60"}),
    )
    _, key = box.new_user("1")
    with pytest.raises(openai.RateLimitError) as caught:
        box.sdk(key).chat.completions.create(model=MODEL, messages=HELLO)
    assert len(fake.requests) == 3
    assert caught.value.response.headers["retry-after"] == "5"


def test_a_limited_key_is_the_answer_when_the_last_retry_is_refused_in_its_stream(
    box_factory: BoxFactory, fake: FakeOpenAI
) -> None:
    """Three keys, the retries spent: a 429 (7 s), a 500, then a stream whose first event
    refuses the key (its probe works). The limited key answers again in 7 s: a 429, not a
    503 `provider_key_rejected`."""
    box = box_factory(keys=(BROKEN, GOOD, "sk-third-key-0000003"), gateway={"max_retries": 2})
    refusal = {"error": {"code": 401, "message": "Incorrect API key provided"}}
    fake.push(
        LIMITED,
        Reply(status=500, error={"message": "boom", "type": "server_error"}),
        Reply(raw=[f"data: {json.dumps(refusal)}\n\n".encode()]),
    )
    _, key = box.new_user("1")
    with pytest.raises(openai.APIStatusError) as caught:
        box.sdk(key).chat.completions.create(model=MODEL, messages=HELLO, stream=True)
    assert (caught.value.status_code, caught.value.code) == (429, "rate_limited")
    assert caught.value.response.headers["retry-after"] == "7"
    assert len(fake.requests) == 3
