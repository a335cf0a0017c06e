"""Upstreams that refuse the operator's key in their own words (the box: tests/hostile/conftest.py):
Gemini's OpenAI-compatible endpoint answers a key that is not valid (or expired) with a 400
whose error details say API_KEY_INVALID, xAI with a 400 "Incorrect API key provided", which is
the key's refusal as a 401 is: the key leaves the rotation once its probe (refused the same way)
confirms it, and the call goes on to the provider's other key; the user never reads that "their"
key is not valid."""

from __future__ import annotations

import json

import pytest

from tests.fakes.hostile_upstream import Act, HostileUpstream
from tests.hostile.conftest import HostileBox, body_of, until_the_key_is_back

pytestmark = pytest.mark.timeout(60)
GEMINI_KEY_INVALID = json.dumps([{"error": {
    "code": 400, "message": "API key not valid. Please pass a valid API key.",
    "status": "INVALID_ARGUMENT",
    "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                 "domain": "googleapis.com",
                 "metadata": {"service": "generativelanguage.googleapis.com"}}],
}}]).encode()  # fmt: skip


XAI_KEY_INVALID = json.dumps({
    "code": "Client specified an invalid argument",
    "error": "Incorrect API key provided: xa***01. You can obtain an API key from "
             "https://console.x.ai.",
}).encode()  # fmt: skip


@pytest.mark.parametrize("refusal", [GEMINI_KEY_INVALID, XAI_KEY_INVALID], ids=["gemini", "xai"])
def test_a_400_about_the_key_takes_it_out_of_rotation_not_the_users_call(
    box: HostileBox, hostile: HostileUpstream, refusal: bytes
) -> None:
    """It was relayed to the user as their 400 ("API key not valid", "Incorrect API key
    provided": xAI says it with a 400 too), no other key tried, and the key stayed in
    rotation, failing a share of every user's calls."""
    email, key = box.new_user("10")
    refused = "sk-ho-key-0001"
    hostile.default = body_of("ho")
    hostile.key_acts[refused] = Act(400, [refusal])
    hostile.probe_acts[refused] = Act(400, [refusal])
    for _ in range(3):
        answer = box.post(key, "chat", "ho", stream=False)
        assert answer.status_code == 200, answer.text
    assert [seen.key for seen in hostile.seen].count(refused) <= 1
    assert len(box.usage_rows(email)) == 3
    hostile.key_acts.clear()
    hostile.probe_acts.clear()
    until_the_key_is_back(box, hostile, key, "chat", "ho", refused)


def test_a_400_that_only_speaks_of_a_key_is_the_users_refusal(
    box: HostileBox, hostile: HostileUpstream
) -> None:
    """A 400 about a field named like a key is the request's fault: relayed, no key touched."""
    _, key = box.new_user("10")
    message = "Invalid 'prompt_cache_key': string too long"
    hostile.default = Act(400, [json.dumps({"error": {"message": message}}).encode()])
    answer = box.post(key, "chat", "ho", stream=False)
    assert answer.status_code == 400 and answer.json()["error"]["message"] == message
    assert len(hostile.seen) == 1 and hostile.probes == []


def test_geminis_403_permission_denied_is_the_keys_not_the_contents(
    box: HostileBox, hostile: HostileUpstream
) -> None:
    """Google says a key's project may not call the API (the API disabled for it, the key
    restricted) in a 403 whose status is PERMISSION_DENIED and whose message names neither key
    nor permission: it was the user's 400 content_refused ("refused the request"), where it is
    the operator's key: probed (its probe refused the same way), out of rotation, the call on
    the other key."""
    _, key = box.new_user("10")
    refused = "sk-ho-key-0002"
    message = ("Generative Language API has not been used in project 123 before or it is "
               "disabled. Enable it by visiting the console, then retry.")  # fmt: skip
    denied = json.dumps([{"error": {"code": 403, "message": message,
                                    "status": "PERMISSION_DENIED"}}]).encode()  # fmt: skip
    hostile.default = body_of("ho")
    hostile.key_acts[refused] = Act(403, [denied])
    hostile.probe_acts[refused] = Act(403, [denied])
    for _ in range(3):
        answer = box.post(key, "chat", "ho", stream=False)
        assert answer.status_code == 200, answer.text
    assert [seen.key for seen in hostile.seen].count(refused) <= 1
    hostile.key_acts.clear()
    hostile.probe_acts.clear()
    until_the_key_is_back(box, hostile, key, "chat", "ho", refused)
