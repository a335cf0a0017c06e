"""POST /v1/embeddings through a real box with the real openai SDK: passed to the `openai`
provider, billed on its `usage.prompt_tokens` at the model's input price."""

from __future__ import annotations

import base64
import json
import struct
import time
from typing import Any

import httpx
import openai
import pytest

from tests.fakes.openai_embeddings import as_float32, vector
from tests.fakes.openai_upstream import Reply
from tests.messages.conftest import usd_nanos
from tests.responses.conftest import (
    ANTHROPIC_MODEL,
    EMBEDDING_MODEL,
    EMBEDDING_PRICE,
    OPENAI_KEY,
    ResponsesBox,
)
from tests.support import TLS

JSON_TYPE = "application/json"
TEXTS = ["the first text " * 40, "the second text " * 40]  # 1240 bytes: up to 1240 tokens held


def test_embeddings_are_billed_on_the_upstreams_prompt_tokens(fresh: ResponsesBox) -> None:
    email, key = fresh.new_key()
    fresh.openai_fake.push(Reply(prompt_tokens=250))
    before, _ = fresh.balance_nanos(email)
    raw = fresh.openai(key).embeddings.with_raw_response.create(
        model=EMBEDDING_MODEL, input=TEXTS, dimensions=4
    )
    result = raw.parse()
    sent = fresh.openai_fake.requests[-1]
    assert (sent.path, sent.api_key) == ("/v1/embeddings", OPENAI_KEY)
    assert sent.body["model"] == "text-embedding-3-small" and sent.body["dimensions"] == 4
    assert sent.body["input"] == TEXTS
    assert [d.embedding for d in result.data] == [as_float32(vector(0)), as_float32(vector(1))]
    assert result.model == EMBEDDING_MODEL and result.usage.prompt_tokens == 250
    expected = usd_nanos((250, EMBEDDING_PRICE))
    after, held = fresh.balance_nanos(email)
    assert (before - after, held) == (expected, 0)
    assert round(float(raw.headers["x-codelace-cost-usd"]) * 1e9) == expected
    assert result.usage.model_extra["cost_usd"] == pytest.approx(expected / 1e9)
    row = fresh.usage_rows(email)[-1]
    assert (row["route"], row["input_tokens"], row["output_tokens"], row["cost_nanos"]) == (
        "/v1/embeddings", 250, 0, expected)  # fmt: skip


def test_embeddings_refusals(fresh: ResponsesBox) -> None:
    email, key = fresh.new_key()
    client = fresh.openai(key)
    before = fresh.balance_nanos(email)
    with pytest.raises(openai.BadRequestError) as wrong_kind:
        client.embeddings.create(model=ANTHROPIC_MODEL, input="hi")
    assert wrong_kind.value.body["param"] == "model"  # type: ignore[index]
    for empty in ([], "", ["a text", ""], [[]]):  # OpenAI: input "cannot be an empty string"
        with pytest.raises(openai.BadRequestError) as no_input:
            client.embeddings.create(model=EMBEDDING_MODEL, input=empty)  # type: ignore[arg-type]
        assert no_input.value.body["param"] == "input"  # type: ignore[index]
    assert fresh.openai_fake.requests == [] and fresh.balance_nanos(email) == before
    fresh.openai_fake.push(Reply(status=400, error={"message": "too long", "type": "invalid"}))
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model=EMBEDDING_MODEL, input="hi")
    assert fresh.balance_nanos(email) == before


def test_a_chat_shaped_embeddings_body_is_refused(fresh: ResponsesBox) -> None:
    """vLLM's /v1/embeddings also takes a chat-shaped body (`messages`, with images by URL,
    `mm_processor_kwargs`): relayed beside `input`, it could make the upstream read media the
    hold (every body byte a token) never counted, or open a `file://` URL on its machine.
    OpenAI's embeddings API has no such fields: a 400 naming them, nothing held or sent."""
    email, key = fresh.new_key()
    client = fresh.openai(key)
    before = fresh.balance_nanos(email)
    image = {"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}
    chat_shaped: list[dict[str, Any]] = [
        {"messages": [{"role": "user", "content": [image]}]},
        {"mm_processor_kwargs": {"num_crops": 16}},
    ]
    for extra in chat_shaped:
        with pytest.raises(openai.BadRequestError) as refused:
            client.embeddings.create(model=EMBEDDING_MODEL, input="hi", extra_body=extra)
        assert refused.value.body["param"] == next(iter(extra))  # type: ignore[index]
        assert "embeddings" in refused.value.body["message"]  # type: ignore[index]
    assert fresh.openai_fake.requests == [] and fresh.balance_nanos(email) == before


def test_a_poor_user_is_refused_before_the_upstream(fresh: ResponsesBox) -> None:
    """Short of credit: told what the call holds (no max_tokens: embeddings have none); with
    none at all: to add credit, nothing about the call's size."""
    _, key = fresh.new_key(credit_usd="0.001")  # the hold: 15,000 bytes at $0.13 / 1M
    with pytest.raises(openai.APIStatusError) as refused:
        fresh.openai(key).embeddings.create(model=EMBEDDING_MODEL, input="hi " * 5000)
    assert refused.value.status_code == 402
    message = refused.value.body["message"]  # type: ignore[index]
    assert "holds $" in message and "max_tokens" not in message and "output" not in message
    _, broke = fresh.new_key(credit_usd="0")
    with pytest.raises(openai.APIStatusError) as none_left:
        fresh.openai(broke).embeddings.create(model=EMBEDDING_MODEL, input="hi")
    message = none_left.value.body["message"]  # type: ignore[index]
    assert none_left.value.status_code == 402 and "no credit left" in message, message
    assert "holds $" not in message and "max_tokens" not in message
    assert fresh.openai_fake.requests == []


def test_billed_fields_are_refused_on_embeddings_too(fresh: ResponsesBox) -> None:
    """OpenRouter routes embeddings with `provider` as it does chat: a field that can buy a
    pricier provider needs the operator's --allow-field here as on every inference route."""
    email, key = fresh.new_key()
    before = fresh.balance_nanos(email)
    with pytest.raises(openai.BadRequestError) as refused:
        fresh.openai(key).embeddings.create(
            model=EMBEDDING_MODEL, input="hi", extra_body={"provider": {"order": ["pricey"]}}
        )
    assert refused.value.body["param"] == "provider"  # type: ignore[index]
    assert refused.value.body["code"] == "field_not_allowed"  # type: ignore[index]
    assert fresh.openai_fake.requests == [] and fresh.balance_nanos(email) == before


def post_embeddings(box: ResponsesBox, key: str, body: dict[str, Any]) -> tuple[int, int]:
    """POST the body as compact JSON; (status, its length in bytes: the hold in tokens)."""
    raw = json.dumps(body, separators=(",", ":")).encode()
    answer = httpx.post(f"{box.server.base_url}/v1/embeddings", content=raw, timeout=30,
                        headers={"authorization": f"Bearer {key}",
                                 "content-type": "application/json"}, verify=TLS)  # fmt: skip
    return answer.status_code, len(raw)


@pytest.mark.parametrize(
    ("given", "least_tokens"),
    [(TEXTS, len("".join(TEXTS)) // 4), ([[7] * 500, [1, 2, 3]], 503)],
    ids=["texts", "token-ids"],
)
def test_an_answer_without_usage_is_charged_an_estimate_within_the_hold(
    fresh: ResponsesBox, given: list[Any], least_tokens: int
) -> None:
    """The provider bills the input all the same: the box charges its never-low estimate (a
    token id is a token however short its digits), never more than it held, never nothing."""
    email, key = fresh.new_key()
    fresh.openai_fake.push(Reply(usage=False))
    before, _ = fresh.balance_nanos(email)
    status, body_len = post_embeddings(fresh, key, {"model": EMBEDDING_MODEL, "input": given})
    assert status == 200
    row = fresh.usage_rows(email)[-1]
    assert row["estimated"] == 1 and row["status"] == "ok"
    assert least_tokens <= row["input_tokens"] <= body_len
    charged = usd_nanos((row["input_tokens"], EMBEDDING_PRICE))
    after, held = fresh.balance_nanos(email)
    assert (before - after, held, row["cost_nanos"]) == (charged, 0, charged)
    assert 0 < charged <= usd_nanos((body_len, EMBEDDING_PRICE))


def test_an_answer_with_total_tokens_only_is_charged_that_count(fresh: ResponsesBox) -> None:
    """An embedding's tokens are all input: `total_tokens` is `prompt_tokens`, so an upstream
    that reports only the total (as some OpenAI-compatible servers do) is charged its count,
    not the never-low estimate of the text."""
    email, key = fresh.new_key()
    answer = {"object": "list", "model": "up", "usage": {"total_tokens": 250},
              "data": [{"object": "embedding", "index": 0, "embedding": vector(0)}]}  # fmt: skip
    fresh.openai_fake.push(Reply(raw=[json.dumps(answer).encode()], content_type=JSON_TYPE))
    before, _ = fresh.balance_nanos(email)
    result = fresh.openai(key).embeddings.create(
        model=EMBEDDING_MODEL, input=TEXTS[0], encoding_format="float"
    )
    expected = usd_nanos((250, EMBEDDING_PRICE))
    assert result.usage.prompt_tokens == 250 and result.data[0].embedding == vector(0)
    row = fresh.usage_rows(email)[-1]
    assert (row["input_tokens"], row["estimated"], row["cost_nanos"]) == (250, 0, expected)
    assert fresh.balance_nanos(email) == (before - expected, 0)


def test_the_sdks_default_base64_vectors_arrive_exactly(fresh: ResponsesBox) -> None:
    """The openai SDK asks for base64 unless told otherwise and decodes the float32 bytes: the
    box relays them untouched, so the SDK reads the upstream's vectors bit for bit."""
    _, key = fresh.new_key()
    result = fresh.openai(key).embeddings.create(model=EMBEDDING_MODEL, input=["a", "b"])
    assert fresh.openai_fake.requests[-1].body["encoding_format"] == "base64"
    assert [d.embedding for d in result.data] == [as_float32(vector(0)), as_float32(vector(1))]


def test_a_failure_reported_in_a_200_is_relayed_and_free(fresh: ResponsesBox) -> None:
    """OpenRouter answers a failure after it accepted the call with a 200 and an `error` body:
    the user reads the provider's message (as on chat completions), not "without data", and
    pays nothing."""
    email, key = fresh.new_key()
    failure = {"error": {"message": "No successful provider responses.", "code": 502}}
    fresh.openai_fake.push(Reply(raw=[json.dumps(failure).encode()], content_type=JSON_TYPE))
    before = fresh.balance_nanos(email)
    with pytest.raises(openai.APIStatusError) as failed:
        fresh.openai(key).embeddings.create(model=EMBEDDING_MODEL, input="hi")
    assert failed.value.status_code == 502
    assert failed.value.body["code"] == "upstream_error"  # type: ignore[index]
    assert "No successful provider responses." in failed.value.body["message"]  # type: ignore[index]
    assert fresh.balance_nanos(email) == before


def test_a_client_that_leaves_is_charged_what_the_provider_counted(fresh: ResponsesBox) -> None:
    """The provider embeds whether or not the client waits: the box still reads its answer and
    charges its prompt tokens (row `abandoned`), and holds nothing afterwards."""
    email, key = fresh.new_key()
    fresh.openai_fake.push(Reply(delay_before=1.0, prompt_tokens=7))
    before, _ = fresh.balance_nanos(email)
    with pytest.raises(httpx.TimeoutException):
        httpx.post(f"{fresh.server.base_url}/v1/embeddings", timeout=0.3,
                   headers={"authorization": f"Bearer {key}"},
                   json={"model": EMBEDDING_MODEL, "input": "hi"}, verify=TLS)  # fmt: skip
    expected = usd_nanos((7, EMBEDDING_PRICE))
    deadline = time.monotonic() + 10
    while fresh.balance_nanos(email) != (before - expected, 0) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fresh.balance_nanos(email) == (before - expected, 0)
    row = fresh.usage_rows(email)[-1]
    assert (row["status"], row["input_tokens"], row["stream"]) == ("abandoned", 7, 0)


def test_an_answer_with_a_usage_of_zeros_is_charged_an_estimate(fresh: ResponsesBox) -> None:
    """LM Studio answers every embeddings call with `{"prompt_tokens": 0, "total_tokens": 0}`
    (lmstudio-bug-tracker #1546): an input is never empty (the box refuses one), so a count of
    zero is no count, as a chat usage of zeros is, and the call is charged the never-low
    estimate, not nothing."""
    email, key = fresh.new_key()
    answer = {"object": "list", "model": "up", "usage": {"prompt_tokens": 0, "total_tokens": 0},
              "data": [{"object": "embedding", "index": 0, "embedding": vector(0)}]}  # fmt: skip
    fresh.openai_fake.push(Reply(raw=[json.dumps(answer).encode()], content_type=JSON_TYPE))
    before, _ = fresh.balance_nanos(email)
    status, body_len = post_embeddings(fresh, key, {"model": EMBEDDING_MODEL, "input": TEXTS[0]})
    assert status == 200
    row = fresh.usage_rows(email)[-1]
    assert row["estimated"] == 1 and len(TEXTS[0]) // 4 <= row["input_tokens"] <= body_len
    charged = usd_nanos((row["input_tokens"], EMBEDDING_PRICE))
    assert row["cost_nanos"] == charged > 0
    assert fresh.balance_nanos(email) == (before - charged, 0)


def _float_answer(count: int) -> Reply:
    """An OpenAI-compatible upstream that ignores `encoding_format`: float lists always."""
    answer = {"object": "list", "model": "up", "usage": {"prompt_tokens": 3, "total_tokens": 3},
              "data": [{"object": "embedding", "index": i, "embedding": vector(i)}
                       for i in range(count)]}  # fmt: skip
    return Reply(raw=[json.dumps(answer).encode()], content_type=JSON_TYPE)


def _embedded(box: ResponsesBox, key: str, body: dict[str, Any]) -> list[Any]:
    answer = httpx.post(f"{box.server.base_url}/v1/embeddings", json=body, timeout=30,
                        headers={"authorization": f"Bearer {key}"}, verify=TLS)  # fmt: skip
    assert answer.status_code == 200, answer.text
    return [d["embedding"] for d in answer.json()["data"]]


def test_base64_asked_of_an_upstream_that_answers_floats_arrives_as_base64(
    fresh: ResponsesBox,
) -> None:
    """Code that asked for base64 decodes what it gets: an upstream that ignores the field and
    answers float lists has them sent on as OpenAI would have, the little-endian float32 bytes
    in base64, byte for byte; floats asked (or nothing asked) stay floats."""
    _, key = fresh.new_key()
    fresh.openai_fake.push(_float_answer(2))
    got = _embedded(fresh, key, {"model": EMBEDDING_MODEL, "input": ["a", "b"],
                                 "encoding_format": "base64"})  # fmt: skip
    assert fresh.openai_fake.requests[-1].body["encoding_format"] == "base64"
    openai_would = [base64.b64encode(struct.pack("<4f", *vector(i))).decode() for i in (0, 1)]
    assert got == openai_would
    for asked in ({"encoding_format": "float"}, {}):
        fresh.openai_fake.push(_float_answer(1))
        body = {"model": EMBEDDING_MODEL, "input": "a"} | asked
        assert _embedded(fresh, key, body) == [vector(0)]
