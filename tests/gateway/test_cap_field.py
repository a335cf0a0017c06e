"""The output cap's field to an `openai` provider that is not OpenAI's own address but refuses
`max_tokens` as OpenAI's reasoning models do (Azure OpenAI's o-series and gpt-5, a proxy in
front of OpenAI): the cap the box added is sent again as `max_completion_tokens`, on every
inference route; a client's own `max_tokens` stays theirs and its refusal is relayed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fakes.openai_upstream import FakeOpenAI
from tests.gateway.conftest import MODEL, MODEL_MAX_OUTPUT, Box, BoxFactory

pytestmark = pytest.mark.timeout(60)
REFUSAL = (
    "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
    "'max_completion_tokens' instead."
)
ERROR = {"message": REFUSAL, "type": "invalid_request_error", "param": "max_tokens",
         "code": "unsupported_parameter"}  # fmt: skip
REFUSED = json.dumps({"error": ERROR})
HELLO = [{"role": "user", "content": "Say hello"}]
PATHS = {"chat": "/v1/chat/completions", "messages": "/v1/messages", "responses": "/v1/responses",
         "capped": "/v1/responses"}  # fmt: skip


def body_of(route: str, stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"model": MODEL, "stream": stream}
    if route == "chat":
        return body | {"messages": HELLO}
    if route == "messages":
        return body | {"messages": HELLO, "max_tokens": 50}
    return body | {"input": "Say hello", **({"max_output_tokens": 60} if route == "capped" else {})}


@pytest.fixture(scope="module")
def box(box_factory: BoxFactory) -> Box:
    return box_factory()


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("route", ["chat", "messages", "responses", "capped"])
def test_a_model_refusing_max_tokens_gets_the_cap_as_max_completion_tokens(
    box_factory: BoxFactory, fake: FakeOpenAI, route: str, stream: bool
) -> None:
    """Every call failed with the upstream's 400: the box always sends a cap, as max_tokens to
    any address but api.openai.com, and Azure's reasoning models take only the other field.
    The provider's next calls go so at once (one request each)."""
    box = box_factory()
    email, key = box.new_user("1")
    fake.field_refusals["max_tokens"] = (400, REFUSED)
    for turn in range(2):
        with box.http(key) as client:
            answer = client.post(PATHS[route], json=body_of(route, stream))
        assert answer.status_code == 200, answer.text
        sent = fake.requests[-1].body
        assert "max_tokens" not in sent
        cap = {"messages": 50, "capped": 60}.get(route, MODEL_MAX_OUTPUT)
        assert sent["max_completion_tokens"] == cap
        assert len(fake.requests) == 2 - turn
        fake.requests.clear()
    rows = box.query('SELECT r.status FROM usage_record r JOIN "user" u ON u.id = r.user_id '
                     "WHERE u.email = ?", email)  # fmt: skip
    assert rows == [("ok",), ("ok",)]


def test_a_clients_own_max_tokens_is_theirs_and_its_refusal_relayed(
    box: Box, fake: FakeOpenAI
) -> None:
    """As OpenAI answers a client who sends max_tokens to a reasoning model."""
    _, key = box.new_user("1")
    fake.field_refusals["max_tokens"] = (400, REFUSED)
    with box.http(key) as client:
        answer = client.post(PATHS["chat"], json={"model": MODEL, "messages": HELLO,
                                                  "max_tokens": 20})  # fmt: skip
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["message"] == REFUSAL
    assert [r.body.get("max_tokens") for r in fake.requests] == [20]


# Volcengine Ark's (Doubao) 400 to a body with both cap fields, which it takes one at a time
BOTH_REFUSED = json.dumps({"error": {
    "code": "InvalidParameter", "param": "max_tokens", "type": "BadRequest",
    "message": "The parameter `max_tokens` specified in the request are not valid: max_tokens "
               "and max_completion_tokens cannot be set at the same time. Request id: 0217",
}})  # fmt: skip


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_a_clients_max_completion_tokens_alone_reaches_a_server_refusing_both_fields(
    box_factory: BoxFactory, fake: FakeOpenAI, stream: bool
) -> None:
    """The client sent only max_completion_tokens, a request the server takes; the box added
    max_tokens beside it (for servers that read only that one), which this server refuses in
    company: the call goes again with the client's field alone, and the provider's next calls
    go so at once."""
    box = box_factory()
    _, key = box.new_user("1")
    fake.field_refusals["max_tokens"] = (400, BOTH_REFUSED)
    body = {"model": MODEL, "messages": HELLO, "max_completion_tokens": 30, "stream": stream}
    for turn in range(2):
        with box.http(key) as client:
            answer = client.post(PATHS["chat"], json=body)
        assert answer.status_code == 200, answer.text
        sent = fake.requests[-1].body
        assert "max_tokens" not in sent
        assert sent["max_completion_tokens"] == 30
        assert len(fake.requests) == 2 - turn
        fake.requests.clear()
