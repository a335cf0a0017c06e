"""A hint the box adds (the `stream_options` that asks a stream's usage) is left out of a
provider's calls for an hour once the provider refused it as a field it does not know. A client
must not be able to make the box believe that with a field of its own whose name merely holds
the hint's (`stream_options.x`, refused by OpenAI as "Unrecognized request argument supplied:
stream_options.x"): every other user's streams to that provider would then report no usage and
be charged estimates (hidden reasoning tokens never charged) for the hour."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.gateway.conftest import MODEL, Box, BoxFactory
from tests.support import TLS

pytestmark = pytest.mark.timeout(60)
POISON = "stream_options.x"
UNKNOWN = f"Unrecognized request argument supplied: {POISON}"  # OpenAI's words
REFUSAL = json.dumps({"error": {"message": UNKNOWN, "type": "invalid_request_error"}})
ASK = [{"role": "user", "content": "hi"}]
PROMPT, COMPLETION, REASONING = 40, 90, 80  # the provider's count: reasoning tokens never streamed


@pytest.fixture(scope="module")
def box(box_factory: BoxFactory) -> Box:
    return box_factory()


def test_a_clients_field_naming_the_hint_does_not_drop_it_for_everyone(
    box: Box, fake: FakeOpenAI
) -> None:
    fake.field_refusals[POISON] = (400, REFUSAL)
    _, attacker = box.new_user("1")
    poisoned = {"model": MODEL, "messages": ASK, "stream": True, POISON: 1}
    refused = box.http(attacker).post("/v1/chat/completions", json=poisoned)
    assert refused.status_code == 400 and POISON in refused.text
    fake.default = Reply(pieces=["a", " b"], prompt_tokens=PROMPT, completion_tokens=COMPLETION,
                         reasoning_tokens=REASONING)  # fmt: skip
    _, victim = box.new_user("1")
    answer = httpx.post(f"{box.url}/v1/chat/completions", timeout=30,
                        json={"model": MODEL, "messages": ASK, "stream": True},
                        headers={"authorization": f"Bearer {victim}"}, verify=TLS)  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert fake.requests[-1].body.get("stream_options") == {"include_usage": True}
    row = box.settled_row(answer.headers["x-request-id"])
    assert (row["input_tokens"], row["output_tokens"], row["estimated"]) == (
        PROMPT, COMPLETION, 0)  # fmt: skip
