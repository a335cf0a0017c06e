"""Holes a hostile user found in the money safety of issue 20 (a review after it merged): a hold
that a request could still outgrow, and an output cap an upstream would not see."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.gateway.conftest import IN_PRICE, MODEL, NANOS, OUT_PRICE, Box, BoxFactory, cost_nanos

pytestmark = pytest.mark.timeout(120)
URL = "/v1/chat/completions"
MIB = 1024 * 1024
# The smallest PNG there is (1x1 pixel): about a hundred bytes of body.
PIXEL = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
    "YPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
# What gpt-4o-mini counts for one image, however small (OpenAI's vision pricing: 2,833 tokens
# at low detail): its images are not counted by their bytes.
TOKENS_PER_IMAGE = 2833


@pytest.fixture(scope="module")
def box(box_factory: BoxFactory) -> Box:
    return box_factory()


def test_inline_images_reserve_the_context_window(box: Box, fake: FakeOpenAI) -> None:
    """40 one-pixel images inline (5 KB of body) that the provider counts 2,833 tokens each:
    the hold covers them (an inline image's tokens follow its size in pixels and the model, not
    its bytes), so the user pays the provider's count and the operator loses nothing."""
    email, key = box.new_user("1")
    images = [{"type": "image_url", "image_url": {"url": PIXEL, "detail": "low"}}] * 40
    prompt = 40 * TOKENS_PER_IMAGE
    fake.push(Reply(content="Forty dots.", prompt_tokens=prompt, completion_tokens=3))
    message = {"role": "user", "content": [{"type": "text", "text": "Count them"}, *images]}
    body = {"model": MODEL, "messages": [message], "max_tokens": 5}
    with box.http(key) as http:
        answer = http.post(URL, json=body)
    assert answer.status_code == 200, answer.text
    row = box.settled_row(answer.headers["x-request-id"])
    cost = cost_nanos(prompt, 3, IN_PRICE, OUT_PRICE)
    assert (row["input_tokens"], row["cost_nanos"]) == (prompt, cost)
    assert cost <= row["hold_nanos"]
    assert box.balance(email) == (NANOS - cost, 0)
    assert "operator's loss" not in box.server.log_text()


@pytest.mark.parametrize("field", ["max_completion_tokens", "max_tokens"])
def test_a_compatible_server_is_sent_the_cap_in_max_tokens(
    box: Box, fake: FakeOpenAI, field: str
) -> None:
    """Ollama and LM Studio read only `max_tokens` (they ignore `max_completion_tokens`): a
    client capping its answer with `max_completion_tokens` alone is reserved that cap, so a
    compatible upstream must be sent it as `max_tokens`, or it would answer past the hold."""
    _, key = box.new_user("1")
    fake.push(Reply(content="Short."))
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], field: 7}
    with box.http(key) as http:
        answer = http.post(URL, json=body)
    assert answer.status_code == 200, answer.text
    sent = fake.requests[-1].body
    assert sent["max_tokens"] == 7
    assert sent.get("max_completion_tokens") in (None, 7)


def test_llama_cpp_n_predict_is_held_as_the_output_cap(box: Box, fake: FakeOpenAI) -> None:
    """llama.cpp's server (llama-server, and what runs on it) reads a chat body's `n_predict`
    over its `max_tokens`: `max_tokens: 1` with `n_predict: 3000` was held one output token,
    answered 3,000 (an unstreamed answer is relayed whole) and charged only the hold, 3,000
    tokens for the price of one. `n_predict` is an output cap like the other two: the largest
    is held, and the provider's count is charged."""
    email, key = box.new_user("1")
    fake.push(Reply(content="A long answer.", completion_tokens_from_cap=True))
    message = {"role": "user", "content": "Write at length"}
    body = {"model": MODEL, "messages": [message], "max_tokens": 1, "n_predict": 3000}
    with box.http(key) as http:
        answer = http.post(URL, json=body)
    assert answer.status_code == 200, answer.text
    assert fake.requests[-1].body["n_predict"] == 3000  # (llama.cpp's own field goes on)
    row = box.settled_row(answer.headers["x-request-id"])
    cost = cost_nanos(11, 3000, IN_PRICE, OUT_PRICE)
    assert (row["output_tokens"], row["cost_nanos"]) == (3000, cost)
    assert box.balance(email) == (NANOS - cost, 0)


@pytest.mark.parametrize("value", [-1, 0, "100", 2.5, 2**31])
def test_an_n_predict_no_hold_covers_is_refused(box: Box, value: Any) -> None:
    """llama.cpp's `n_predict: -1` is no cap at all (generate until the context is full), and
    what is no positive integer cannot be held for either: a 400 naming the field, nothing
    held or sent."""
    email, key = box.new_user("1")
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "n_predict": value}
    with box.http(key) as http:
        answer = http.post(URL, json=body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["param"] == "n_predict"
    assert box.balance(email) == (NANOS, 0)


def test_llama_cpp_n_cmpl_is_held_as_n(box: Box, fake: FakeOpenAI) -> None:
    """llama.cpp's server counts its completions in `n_cmpl` (`n` only stands in for it):
    three completions of 1,000 tokens were held as one (3,000 produced, charged the hold).
    The larger of `n` and `n_cmpl` is held, and the provider's count charged."""
    email, key = box.new_user("1")
    fake.push(Reply(content="Three answers.", completion_tokens=3000))
    message = {"role": "user", "content": "Three takes, please"}
    body = {"model": MODEL, "messages": [message], "max_tokens": 1000, "n_cmpl": 3}
    with box.http(key) as http:
        answer = http.post(URL, json=body)
    assert answer.status_code == 200, answer.text
    row = box.settled_row(answer.headers["x-request-id"])
    cost = cost_nanos(11, 3000, IN_PRICE, OUT_PRICE)
    assert (row["output_tokens"], row["cost_nanos"]) == (3000, cost)
    assert box.balance(email) == (NANOS - cost, 0)


def test_an_answer_as_long_as_the_context_is_refused(box: Box, fake: FakeOpenAI) -> None:
    """text-generation-webui's OpenAI API takes its generation options in a chat body:
    `auto_max_new_tokens: true` makes the answer as long as the context leaves room for,
    whatever `max_tokens` says, so a call held for one output token was answered the whole
    context, unstreamed, and charged its hold. It is a 400 naming the field (false is none)."""
    _, key = box.new_user("1")
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1}
    with box.http(key) as http:
        refused = http.post(URL, json=body | {"auto_max_new_tokens": True})
        fake.push(Reply(content="Hi."))
        allowed = http.post(URL, json=body | {"auto_max_new_tokens": False})
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["param"] == "auto_max_new_tokens"
    assert allowed.status_code == 200, allowed.text
    assert [r.body.get("auto_max_new_tokens") for r in fake.requests] == [False]


def _event(delta: dict[str, Any] | None, finish: str | None = None, usage: Any = None) -> bytes:
    """One OpenAI stream event; no delta: the usage chunk (no choices)."""
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    chunk = {"id": "chatcmpl-blob", "object": "chat.completion.chunk", "created": 1,
             "model": "m", "choices": choices, "usage": usage}  # fmt: skip
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


def test_opaque_reasoning_data_does_not_cut_the_answer(box: Box, fake: FakeOpenAI) -> None:
    """OpenRouter relays a model's encrypted reasoning (Gemini's thought signature, OpenAI's
    encrypted content) as a base64 `data` blob of a few kilobytes in one delta: that blob is no
    measure of the tokens produced, so it must not bring the stream to its cap and cut the
    answer a provider was still allowed to give (12 tokens of answer under a cap of 60)."""
    _, key = box.new_user("1")
    blob = base64.b64encode(bytes(range(256)) * 12).decode()  # 4 KB: 256 "tokens" at 16 a token
    secret = {"type": "reasoning.encrypted", "data": blob, "format": "google-gemini-v1"}
    words = [f" word{i}" for i in range(12)]
    usage = {"prompt_tokens": 9, "completion_tokens": 40, "total_tokens": 49}
    raw = [
        _event({"role": "assistant", "content": "", "reasoning_details": [secret]}),
        *(_event({"content": word}) for word in words),
        _event({}, "stop"),
        _event(None, usage=usage),
        b"data: [DONE]\n\n",
    ]
    fake.push(Reply(raw=raw))
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "stream": True,
            "max_tokens": 60}  # fmt: skip
    with box.http(key) as http, http.stream("POST", URL, json=body) as response:
        request_id = response.headers["x-request-id"]
        events = [
            json.loads(e[6:]) for e in response.read().split(b"\n\n") if e.startswith(b"data: {")
        ]
    text = "".join(c["delta"].get("content") or "" for e in events for c in e["choices"])
    assert text == "".join(words)
    assert [c["finish_reason"] for c in events[-1]["choices"]] == ["stop"]
    row = box.settled_row(request_id)
    assert (row["output_tokens"], row["estimated"], row["error_code"]) == (40, 0, None)


@pytest.fixture(scope="module")
def small_box(box_factory: BoxFactory) -> Box:
    """A box that takes upstream answers of at most 1 MiB."""
    return box_factory(gateway={"max_upstream_body_bytes": MIB})


def huge_completion(content_mib: int, usage: dict[str, int] | None) -> list[bytes]:
    """A chat.completion whose content is `content_mib` MiB, its usage last (as OpenAI writes
    it), in 1 MiB writes."""
    answer: dict[str, Any] = {"id": "chatcmpl-huge", "object": "chat.completion", "created": 1,
                              "model": "up", "choices": [{"index": 0, "finish_reason": "length",
                              "message": {"role": "assistant", "content": "@"}}]}  # fmt: skip
    if usage is not None:
        answer["usage"] = usage
    before, after = json.dumps(answer, indent=2).encode().split(b"@")
    return [before, *([b"x" * MIB] * content_mib), after]


def test_an_answer_too_large_to_relay_is_charged_the_providers_count(
    small_box: Box, fake: FakeOpenAI
) -> None:
    """A user can ask for an answer larger than the box relays (n choices with top_logprobs make
    megabytes per thousand tokens): the provider did the work and bills it, so the 502 is
    charged the provider's count (read from the answer's end), not given away for free."""
    box = small_box
    email, key = box.new_user("1")
    usage = {"prompt_tokens": 5, "completion_tokens": 900, "total_tokens": 905}
    fake.push(Reply(raw=huge_completion(3, usage), content_type="application/json"))
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1000,
            "logprobs": True, "top_logprobs": 20}  # fmt: skip
    with box.http(key) as http:
        answer = http.post(URL, json=body)
    assert answer.status_code == 502, answer.text[:300]
    assert answer.json()["error"]["code"] == "upstream_too_large"
    row = box.settled_row(answer.headers["x-request-id"])
    cost = cost_nanos(5, 900, IN_PRICE, OUT_PRICE)
    assert (row["status"], row["error_code"], row["estimated"]) == (
        "error",
        "upstream_too_large",
        0,
    )
    assert (row["input_tokens"], row["output_tokens"], row["cost_nanos"]) == (5, 900, cost)
    assert box.balance(email) == (NANOS - cost, 0)


def test_an_answer_too_large_without_usage_is_charged_within_the_hold(
    small_box: Box, fake: FakeOpenAI
) -> None:
    box = small_box
    email, key = box.new_user("1")
    fake.push(Reply(raw=huge_completion(2, None), content_type="application/json"))
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1000}
    with box.http(key) as http:
        answer = http.post(URL, json=body)
    assert answer.status_code == 502, answer.text[:300]
    row = box.settled_row(answer.headers["x-request-id"])
    assert (row["status"], row["estimated"]) == ("error", 1)
    assert 0 < row["cost_nanos"] <= row["hold_nanos"]
    assert box.balance(email) == (NANOS - row["cost_nanos"], 0)
