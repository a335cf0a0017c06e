"""A key its upstream refuses on calls (403) while its probe works (a key that may list models but
not call this one, an organisation blocked from the model) cannot be judged by a probe: after a
second such refusal, on a call of another account, it is parked, out of rotation until the
operator puts it back, no scheduled probe brings it back, and the operator hears of it
(`providers list`, the alert webhook, the log)."""

from __future__ import annotations

import json
import time

import openai
import pytest

from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.gateway.conftest import MODEL, Box, BoxFactory

pytestmark = pytest.mark.timeout(90)
HELLO = [{"role": "user", "content": "Say hello"}]
BLOCKED, GOOD = "sk-blocked-key-000001", "sk-good-key-000000002"


def keys_of(box: Box) -> list[dict[str, object]]:
    return list(json.loads(box.cli("providers", "list", "--json"))[0]["keys"])


def _eventually(check: object, what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for: {what}"
        time.sleep(0.05)


def test_a_key_refused_on_calls_whose_probe_works_is_parked_until_the_operator_acts(
    box_factory: BoxFactory, fake: FakeOpenAI, hook: WebhookReceiver
) -> None:
    box = box_factory(
        keys=(BLOCKED, GOOD),
        gateway={"max_retries": 2, "key_probe_sec": 0.3},
        alerts={"webhook_url": hook.url},
        env={"CODELACE_UPKEEP_TICK_SEC": "0.2"},
    )
    fake.key_status[BLOCKED] = 403  # "Key answered 403.": about the key; its probe answers 200
    clients = [box.sdk(box.new_user(name)[1]) for name in ("1", "2")]
    client = clients[0]
    for turn in range(8):  # two accounts' calls: refused for both, not for what one asks
        done = clients[turn % 2].chat.completions.create(model=MODEL, messages=HELLO)
        assert done.choices[0].message.content == "Hello from the fake upstream."
    used = [r.api_key for r in fake.requests]
    assert used.count(BLOCKED) == 2, f"parked after its second refusal, not tried on: {used}"
    assert used.count(GOOD) == 8
    assert fake.probes.count(BLOCKED) <= 2, "a parked key is not probed call after call"
    blocked = keys_of(box)[0]
    assert blocked["failing"] and blocked["parked"]
    reason = str(blocked["failure_reason"])
    assert reason.startswith("HTTP 403: ") and "its probe works" in reason, reason
    assert "providers key-enable fake 1" in reason
    listed = box.cli("providers", "list")
    assert "1:sk-…0001 (parked)" in listed, listed
    box.server.wait_for_log(r"provider key 1 \(sk-…0001\) parked")
    _eventually(lambda: any("parked" in t and "key-enable" in t for t in hook.texts()), "alert")
    time.sleep(1.0)  # three rounds of scheduled probes: none brings it back
    assert keys_of(box)[0]["failing"]
    sent = len(fake.requests)
    client.chat.completions.create(model=MODEL, messages=HELLO)
    assert [r.api_key for r in fake.requests[sent:]] == [GOOD]
    fake.key_status.clear()  # the operator had the block lifted, and puts the key back
    assert "back in rotation" in box.cli("providers", "key-enable", "fake", "1")
    assert not keys_of(box)[0]["failing"] and not keys_of(box)[0]["parked"]
    (entry,) = [e for e in json.loads(box.cli("audit", "--json"))
                if e["command"] == "providers key-enable"]  # fmt: skip
    before, after = entry["before"]["keys"][0], entry["after"]["keys"][0]
    assert (before["parked"], after["parked"]) == (True, False), entry  # the audit says parked
    time.sleep(0.6)
    sent = len(fake.requests)
    for _ in range(2):
        client.chat.completions.create(model=MODEL, messages=HELLO)
    assert {r.api_key for r in fake.requests[sent:]} == {BLOCKED, GOOD}
    assert BLOCKED not in box.server.log_text() and BLOCKED not in "".join(hook.texts())
    probes = fake.probes.count(BLOCKED)  # key-enable on a key in rotation said "back in"
    again = box.cli("providers", "key-enable", "fake", "1")
    assert "was already in rotation" in again and "back in" not in again, again
    assert fake.probes.count(BLOCKED) > probes, "its upstream is still asked"


def test_the_last_key_in_rotation_is_not_parked_but_no_longer_probed_call_after_call(
    box_factory: BoxFactory, fake: FakeOpenAI
) -> None:
    """Parking a provider's last working key would turn every model of it to 503, those the key
    may still call included: it stays, each call refused once (not retried on the same key,
    which was sent three times a call), and the log says why."""
    box = box_factory(keys=(BLOCKED,), gateway={"max_retries": 2})
    fake.key_status[BLOCKED] = 403
    keys = [box.new_user(name)[1] for name in ("1", "2")]  # refused for two accounts
    for turn in range(4):
        with pytest.raises(openai.APIStatusError) as caught:
            box.sdk(keys[turn % 2]).with_options(max_retries=0).chat.completions.create(
                model=MODEL, messages=HELLO
            )
        assert (caught.value.status_code, caught.value.code) == (503, "provider_key_rejected")
    assert fake.probes.count(BLOCKED) <= 2
    assert len(fake.requests) == 4, "a refused key is not asked again within one call"
    assert not keys_of(box)[0]["parked"]
    box.server.wait_for_log(r"key 1 \(sk-…0001\) .*its last key in rotation")


def test_one_accounts_refused_calls_never_park_a_key(
    box_factory: BoxFactory, fake: FakeOpenAI
) -> None:
    """What one account sends (a beta flag, a field, content of its choosing) may be what the
    upstream refuses with a 403 that names the key: that account alone could otherwise park the
    operator's keys one after the other. Its calls are answered by the next key; the key stays
    in rotation until a call of another account is refused too."""
    box = box_factory(keys=(BLOCKED, GOOD), gateway={"max_retries": 2, "key_probe_sec": 0.3})
    fake.key_status[BLOCKED] = 403
    client = box.sdk(box.new_user("1")[1])
    for _ in range(8):
        done = client.chat.completions.create(model=MODEL, messages=HELLO)
        assert done.choices[0].message.content == "Hello from the fake upstream."
    used = [r.api_key for r in fake.requests]
    assert used.count(BLOCKED) >= 3, f"one account's refusals parked the key: {used}"
    assert not keys_of(box)[0]["parked"]
    other = box.sdk(box.new_user("2")[1])
    for _ in range(4):
        other.chat.completions.create(model=MODEL, messages=HELLO)
    assert keys_of(box)[0]["parked"], "refused for a second account too: parked"


def test_a_probe_that_gets_no_verdict_never_parks_a_key(
    box_factory: BoxFactory, fake: FakeOpenAI
) -> None:
    """A key refused (401) while its probe gets no verdict (the upstream's model list answers
    503) was not shown to work: it is not parked as "refused though its probe works" (which no
    scheduled probe clears); once the probe answers again, its refusal is confirmed and the key
    is flagged, and comes back by the scheduled probe when it works."""
    box = box_factory(keys=(BLOCKED, GOOD), gateway={"max_retries": 2, "key_probe_sec": 0.3})
    fake.key_status[BLOCKED] = 401
    fake.probe_status[BLOCKED] = 503
    clients = [box.sdk(box.new_user(name)[1]) for name in ("1", "2")]
    for turn in range(6):  # two accounts' calls, answered by the other key
        done = clients[turn % 2].chat.completions.create(model=MODEL, messages=HELLO)
        assert done.choices[0].message.content == "Hello from the fake upstream."
    blocked = keys_of(box)[0]
    assert not blocked["parked"], f"parked on a probe that said nothing: {blocked}"
    fake.probe_status[BLOCKED] = 401  # the model list answers again: the key is refused
    clients[0].chat.completions.create(model=MODEL, messages=HELLO)
    _eventually(lambda: keys_of(box)[0]["failing"], "the confirmed refusal flags the key")
    assert not keys_of(box)[0]["parked"]
    fake.key_status.clear()
    fake.probe_status.clear()  # the key works again: the scheduled probe puts it back
    _eventually(lambda: not keys_of(box)[0]["failing"], "back in rotation by its probe")


@pytest.mark.parametrize("status", [404, 501])
def test_a_probe_answered_404_still_parks_a_key_refused_for_two_accounts(
    box_factory: BoxFactory, fake: FakeOpenAI, status: int
) -> None:
    """An upstream without a model list (404, or 501 Not Implemented: an answer for good, not
    for now) can never judge a key by its probe: a key it refuses on calls of two accounts is
    parked, not left in rotation to be refused for ever."""
    box = box_factory(keys=(BLOCKED, GOOD), gateway={"max_retries": 2, "key_probe_sec": 0.3})
    fake.key_status[BLOCKED] = 401
    fake.probe_status[BLOCKED] = status
    clients = [box.sdk(box.new_user(name)[1]) for name in ("1", "2")]
    for turn in range(6):
        clients[turn % 2].chat.completions.create(model=MODEL, messages=HELLO)
    assert keys_of(box)[0]["parked"]


def test_an_embeddings_call_refused_for_its_key_goes_to_the_next_and_flags_it(
    box_factory: BoxFactory, fake: FakeOpenAI
) -> None:
    """/v1/embeddings judges a refused key as chat does: the call is answered by the next key,
    the refused key (its probe confirms it) leaves the rotation, and comes back by its probe."""
    box = box_factory(keys=(BLOCKED, GOOD), gateway={"max_retries": 2, "key_probe_sec": 0.3})
    box.cli("models", "set", "fake/emb", "--input-per-1m", "0.1", "--output-per-1m", "0")
    fake.key_status[BLOCKED] = 401
    fake.probe_status[BLOCKED] = 401
    client = box.sdk(box.new_user("1")[1])
    time.sleep(1.2)  # the serving box sees the new model
    for _ in range(3):
        done = client.embeddings.create(model="fake/emb", input=[[1, 2, 3], [4]])
        assert len(done.data) == 2
    used = [r.api_key for r in fake.requests if r.path == "/v1/embeddings"]
    assert used.count(BLOCKED) == 1 and used.count(GOOD) == 3, used
    assert keys_of(box)[0]["failing"] and not keys_of(box)[0]["parked"]
    fake.key_status.clear()
    fake.probe_status.clear()
    _eventually(lambda: not keys_of(box)[0]["failing"], "back in rotation by its probe")
