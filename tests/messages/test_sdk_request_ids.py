"""The request id as the anthropic SDK shows it: `message._request_id`, `error.request_id` and a
stream's headers read Anthropic's `request-id` header, not `x-request-id`; a user quoting the id
the SDK gave them must quote the one the operator finds in the usage rows and the log."""

from __future__ import annotations

import pytest

from tests.fakes.anthropic_upstream import Reply
from tests.messages.conftest import MODEL, NEEDS_SDK, OPENAI_MODEL, MessagesBox

pytestmark = NEEDS_SDK
ASK = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize("model", [MODEL, OPENAI_MODEL])
def test_the_sdk_sees_the_request_id_of_each_answer(fresh: MessagesBox, model: str) -> None:
    email, key = fresh.new_key()
    client = fresh.client(key)
    fresh.fake.script(Reply(text="one"), Reply(text="two"))
    raw = client.messages.with_raw_response.create(model=model, max_tokens=20, messages=ASK)
    message = raw.parse()
    assert message._request_id == raw.headers["x-request-id"]
    assert message._request_id in [row["request_id"] for row in fresh.usage_rows(email)]
    with client.messages.stream(model=model, max_tokens=20, messages=ASK) as stream:
        stream.get_final_message()
    assert stream.response.headers.get("request-id") == stream.response.headers["x-request-id"]
    counted = client.messages.count_tokens(model=model, messages=ASK)
    assert counted._request_id and counted._request_id.startswith("req_")


def test_an_error_carries_its_request_id_in_the_sdk(fresh: MessagesBox) -> None:
    import anthropic

    _, key = fresh.new_key()
    with pytest.raises(anthropic.NotFoundError) as refused:
        fresh.client(key).messages.create(model="nobody/none", max_tokens=5, messages=ASK)
    assert refused.value.request_id == refused.value.response.headers["x-request-id"]
    with pytest.raises(anthropic.AuthenticationError) as unknown:
        fresh.client("cl_" + "x" * 40).messages.create(model=MODEL, max_tokens=5, messages=ASK)
    assert unknown.value.request_id and unknown.value.request_id.startswith("req_")
