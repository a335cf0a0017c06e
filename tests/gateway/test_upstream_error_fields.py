"""An `openai` upstream's refusal (4xx) carries OpenAI's error object: its `code` and `param` are
what OpenAI SDK users act on (`e.code == "context_length_exceeded"`, `e.param`). The box
relays them to the client (the param in the client's own terms on a translated Responses call),
keeps its own `type`, and keeps `upstream_<status>` where it stood for the operator (the usage
row, the metrics); a refusal without them, or with values that are no plain words, keeps
`upstream_<status>` as the code."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.gateway.conftest import MODEL, Box, BoxFactory
from tests.support import TLS

pytestmark = pytest.mark.timeout(60)
HELLO = [{"role": "user", "content": "Say hello"}]
TOO_HOT = "Invalid 'temperature': decimal above maximum value. Expected a value <= 2."
TOO_LONG = (
    "This model's maximum context length is 128000 tokens. However, your messages resulted in "
    "200000 tokens."
)


@pytest.fixture(scope="module")
def box(box_factory: BoxFactory) -> Box:
    return box_factory(gateway={"max_retries": 0})


def refusal(code: Any, param: Any, message: str = TOO_HOT, status: int = 400) -> Reply:
    error = {"message": message, "type": "invalid_request_error", "code": code, "param": param}
    return Reply(status=status, error=error)


def error_row(box: Box, request_id: str) -> tuple[Any, ...]:
    row = box.usage_row(request_id)
    return row["status"], row["error_code"], row["cost_nanos"]


@pytest.mark.parametrize(
    ("code", "param", "message"),
    [
        ("decimal_above_max_value", "temperature", TOO_HOT),
        ("context_length_exceeded", "messages", TOO_LONG),
    ],
)
def test_an_openai_upstreams_code_and_param_reach_the_sdk(
    box: Box, fake: FakeOpenAI, code: str, param: str | None, message: str
) -> None:
    """They became `upstream_400` and no param: an agent that compacts its history on
    context_length_exceeded (as LiteLLM and OpenRouter users get it) never did."""
    _, key = box.new_user("1")
    fake.push(refusal(code, param, message))
    with pytest.raises(openai.APIStatusError) as caught:
        box.sdk(key).with_options(max_retries=0).chat.completions.create(
            model=MODEL, messages=HELLO, temperature=2.5
        )
    assert caught.value.code == code
    assert isinstance(caught.value.body, dict)
    assert caught.value.body.get("param") == param
    assert caught.value.body["type"] == "invalid_request_error"
    assert message in caught.value.message
    status = caught.value.status_code
    assert error_row(box, caught.value.response.headers["x-request-id"]) == (
        "error", f"upstream_{status}", 0,
    )  # fmt: skip


def test_an_openai_upstreams_model_not_found_is_the_provider_unavailable(
    box: Box, fake: FakeOpenAI
) -> None:
    """Its 404 `model_not_found` names the catalog's upstream model, which the operator chose:
    the user asked for a model the catalog has. Not relayed (it was, code and words): a 503
    `provider_unavailable`, free; the upstream's words are the operator's, in the server log."""
    _, key = box.new_user("1")
    missing = "The model `gpt-op-404` does not exist or you do not have access to it."
    fake.push(refusal("model_not_found", None, missing, status=404))
    with pytest.raises(openai.APIStatusError) as caught:
        box.sdk(key).with_options(max_retries=0).chat.completions.create(
            model=MODEL, messages=HELLO
        )
    assert (caught.value.status_code, caught.value.code) == (503, "provider_unavailable")
    assert "gpt-op-404" not in caught.value.response.text
    assert error_row(box, caught.value.response.headers["x-request-id"]) == (
        "error", "provider_unavailable", 0,
    )  # fmt: skip
    box.server.wait_for_log(r"does not serve the model .*gpt-op-404")


@pytest.mark.parametrize(
    ("code", "param"),
    [(400, "temperature\x1b[31m"), ("not a code; " * 3, "t" * 500), (None, None), ({"x": 1}, [1])],
    ids=["number-and-control-bytes", "words-and-too-long", "none", "objects"],
)
def test_fields_that_are_no_plain_words_keep_the_boxs_code(
    box: Box, fake: FakeOpenAI, code: Any, param: Any
) -> None:
    """OpenRouter and Gemini's OpenAI endpoint send the status as a number; a hostile upstream
    may send anything: only short plain words are relayed."""
    _, key = box.new_user("1")
    fake.push(refusal(code, param))
    with box.http(key) as http:
        answer = http.post("/v1/chat/completions", json={"model": MODEL, "messages": HELLO})
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert (error["code"], error["type"]) == ("upstream_400", "invalid_request_error"), error
    assert "param" not in error or error["param"] is None, error


def test_an_echoed_key_is_never_relayed_in_a_code_or_param(box: Box, fake: FakeOpenAI) -> None:
    _, key = box.new_user("1")
    secret = "sk-fake-key-0001"  # the provider key the box is given (tests/gateway/conftest.py)
    fake.push(refusal(secret, f"key {secret}"))
    with box.http(key) as http:
        answer = http.post("/v1/chat/completions", json={"model": MODEL, "messages": HELLO})
    assert answer.status_code == 400, answer.text
    assert secret not in answer.text


def test_a_translated_responses_call_names_the_field_the_client_sent(
    box: Box, fake: FakeOpenAI
) -> None:
    """The upstream saw Chat Completions (`max_completion_tokens`, `messages`); the client sent
    the Responses fields, which the param names, as the box's own refusals there do."""
    _, key = box.new_user("1")
    fake.push(refusal("integer_above_max_value", "max_tokens"))
    fake.push(refusal("context_length_exceeded", "messages[1].content", TOO_LONG))
    body = {"model": MODEL, "input": "hi", "max_output_tokens": 500}
    with box.http(key) as http:
        answers = [http.post("/v1/responses", json=body) for _ in range(2)]
    errors = [a.json()["error"] for a in answers]
    assert [(e["code"], e["param"]) for e in errors] == [
        ("integer_above_max_value", "max_output_tokens"),
        ("context_length_exceeded", "input"),
    ], errors


def test_embeddings_relay_them_too(box: Box, fake: FakeOpenAI) -> None:
    _, key = box.new_user("1")
    fake.push(refusal("invalid_value", "dimensions", "Invalid 'dimensions': must be >= 1."))
    with box.http(key) as http:
        answer = http.post("/v1/embeddings", json={"model": MODEL, "input": "hi", "dimensions": 0})
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert (error["code"], error["param"]) == ("invalid_value", "dimensions"), error


def test_the_messages_route_keeps_anthropics_shape(box: Box, fake: FakeOpenAI) -> None:
    _, key = box.new_user("1")
    fake.push(refusal("decimal_above_max_value", "temperature"))
    answer = httpx.post(
        box.url + "/v1/messages",
        json={"model": MODEL, "max_tokens": 50, "messages": HELLO},
        headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
        timeout=30,
        verify=TLS,
    )
    assert answer.status_code == 400, answer.text
    assert answer.json() == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": answer.json()["error"]["message"]},
    }
