"""A provider key past its own spend cap (OpenRouter's 403 "Key limit exceeded"): the operator's
key wants paying, as a 402 does; it is not a refused key, so it is neither probed nor parked."""

from __future__ import annotations

import json

import openai
import pytest

from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.gateway.conftest import MODEL, BoxFactory

pytestmark = pytest.mark.timeout(60)
HELLO = [{"role": "user", "content": "Say hello"}]
CAPPED, GOOD = "sk-capped-key-0001", "sk-good-key-00002"
# OpenRouter's answer to a key past the credit limit the operator set on it (it resets daily,
# weekly or monthly, or when the operator raises it)
KEY_LIMIT = Reply(
    status=403,
    error={
        "message": "Key limit exceeded (daily limit). Manage it using "
        "https://openrouter.ai/settings/keys",
        "code": 403,
    },
)


def test_a_key_past_its_spend_cap_is_not_parked_and_the_last_one_is_out_of_credit(
    box_factory: BoxFactory, fake: FakeOpenAI
) -> None:
    box = box_factory(keys=(CAPPED, GOOD))
    for credit in ("1", "2"):  # two accounts: a refused key whose probe works is parked
        _, key = box.new_user(credit)
        fake.push(KEY_LIMIT)  # the call's first attempt (the capped key's turn)
        done = box.sdk(key).chat.completions.create(model=MODEL, messages=HELLO)
        assert done.choices[0].message.content == "Hello from the fake upstream."
    assert [r.api_key for r in fake.requests] == [CAPPED, GOOD] * 2
    listed = json.loads(box.cli("providers", "list", "--json"))
    assert [k["failing"] for k in listed[0]["keys"]] == [False, False], "a capped key is parked"
    assert fake.probes == [], "a spend cap is no refusal of the key to probe"
    fake.push(KEY_LIMIT, KEY_LIMIT, KEY_LIMIT)
    _, key = box.new_user("4")
    with pytest.raises(openai.APIStatusError) as caught:
        box.sdk(key).chat.completions.create(model=MODEL, messages=HELLO)
    assert (caught.value.status_code, caught.value.code) == (503, "provider_out_of_credit")
    assert "Key limit exceeded" in caught.value.message
