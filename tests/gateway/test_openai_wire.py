"""What real OpenAI-compatible servers send beyond the happy path, relayed to the real `openai`
SDK: OpenRouter comments and mid-stream error chunks, `data:` without its space, CRLF, a
missing `[DONE]`, Azure's `choices: []` first chunk, n=2, gzip, usage details, answers without
usage, Ollama's `{"error": "text"}` and OpenRouter's 200-with-error body."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

import openai
import pytest

from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.gateway.conftest import IN_PRICE, MODEL, OUT_PRICE, Box, BoxFactory, cost_nanos
from tests.support import sdk_http

pytestmark = pytest.mark.timeout(60)
HELLO = [{"role": "user", "content": "Say hello"}]
BASE = {"id": "chatcmpl-w1", "object": "chat.completion.chunk", "created": 1, "model": "up"}
USAGE = {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14}
DONE = b"data: [DONE]\n\n"


@pytest.fixture(scope="module")
def box(box_factory: BoxFactory) -> Box:
    return box_factory(env={"CODELACE_SSE_KEEPALIVE_SEC": "0.3"})


def event(value: Any, head: bytes = b"data: ", end: bytes = b"\n\n") -> bytes:
    return head + json.dumps(value).encode() + end


def chunk(text: str | None = None, finish: str | None = None, index: int = 0) -> dict[str, Any]:
    delta = {} if text is None else {"content": text}
    return BASE | {"choices": [{"index": index, "delta": delta, "finish_reason": finish}]}


def usage_chunk(usage: dict[str, Any] = USAGE) -> dict[str, Any]:
    return BASE | {"choices": [], "usage": usage}


def stream(box: Box, key: str, **options: Any) -> tuple[list[Any], Exception | None]:
    """The chunks the SDK yields, and the exception that ended the stream, if any."""
    chunks: list[Any] = []
    client = box.sdk(key)
    try:
        for item in client.chat.completions.create(
            model=MODEL, messages=HELLO, stream=True, **options
        ):
            chunks.append(item)
    except openai.APIError as exc:
        return chunks, exc
    return chunks, None


def only_row(box: Box, email: str) -> dict[str, Any]:
    """The user's one usage row, once it is written."""
    deadline = time.monotonic() + 5
    while True:
        found = box.query(
            'SELECT r.request_id FROM usage_record r JOIN "user" u ON u.id = r.user_id '
            "WHERE u.email = ?",
            email,
        )
        if found or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(found) == 1, found
    return box.usage_row(found[0][0])


def text_of(chunks: list[Any], index: int = 0) -> str:
    return "".join(
        c.choices[0].delta.content or ""
        for c in chunks
        if c.choices and c.choices[0].index == index
    )


def test_openrouter_comments_bare_data_crlf_and_no_done_are_one_normal_stream(
    box: Box, fake: FakeOpenAI
) -> None:
    email, key = box.new_user("1")
    start = box.balance(email)[0]
    crlf = [
        event(c, b"data:", b"\r\n\r\n") for c in (chunk("Hel"), chunk("lo"), chunk(None, "stop"))
    ]
    fake.push(Reply(raw=[b": OPENROUTER PROCESSING\r\n\r\n", *crlf, event(usage_chunk())]))
    chunks, failure = stream(box, key, stream_options={"include_usage": True})
    assert failure is None and text_of(chunks) == "Hello"
    assert chunks[-1].usage.prompt_tokens == 10 and chunks[-1].id == "chatcmpl-w1"
    cost = cost_nanos(10, 4, IN_PRICE, OUT_PRICE)
    assert box.balance(email) == (start - cost, 0)
    assert Decimal(str(chunks[-1].usage.cost_usd)) * 10**9 == cost


def test_a_finished_stream_without_done_or_usage_is_complete_and_charged(
    box: Box, fake: FakeOpenAI
) -> None:
    """Every choice sent its finish_reason and the body ended cleanly: the answer is whole, so
    the client gets no error and the output it received is charged (estimated)."""
    email, key = box.new_user("1")
    start = box.balance(email)[0]
    fake.push(Reply(raw=[event(chunk("Hello there")), event(chunk(None, "stop"))]))
    chunks, failure = stream(box, key, stream_options={"include_usage": True})
    assert failure is None, failure
    assert text_of(chunks) == "Hello there" and chunks[-1].usage.completion_tokens == 3
    row = only_row(box, email)
    assert (row["status"], row["estimated"], row["output_tokens"]) == ("ok", 1, 3)
    assert row["cost_nanos"] > 0 and box.balance(email) == (start - row["cost_nanos"], 0)


def test_usage_null_on_chunks_is_relayed_as_the_upstream_sent(box: Box, fake: FakeOpenAI) -> None:
    """With include_usage, OpenAI puts `"usage": null` on every chunk before the usage one; a
    native upstream's chunks keep the key where it sent it, and lack it where it did not."""
    _, key = box.new_user("1")
    sent = [chunk("Hel") | {"usage": None}, chunk("lo"), chunk(None, "stop") | {"usage": None}]
    fake.push(Reply(raw=[*map(event, sent), event(usage_chunk()), DONE]))
    chunks, failure = stream(box, key, stream_options={"include_usage": True})
    assert failure is None and text_of(chunks) == "Hello"
    assert ["usage" in c.model_fields_set for c in chunks] == [True, False, True, True]
    assert [c.usage is None for c in chunks] == [True, True, True, False]


def test_a_stream_cut_cleanly_before_its_finish_is_still_an_error(
    box: Box, fake: FakeOpenAI
) -> None:
    email, key = box.new_user("1")
    fake.push(
        Reply(raw=[event(chunk("Hel")), event(chunk(None, "stop")), event(chunk("x", None, 1))])
    )
    _, failure = stream(box, key, n=2)
    assert failure is not None and "ended before it was complete" in str(failure)
    assert only_row(box, email)["status"] == "error"


@pytest.mark.parametrize(
    "error_event",
    [
        chunk("", "error")
        | {"error": {"code": "server_error", "message": "Provider disconnected"}},
        {"error": {"object": "error", "message": "Provider disconnected", "code": 400}},
        {"object": "error", "message": "Provider disconnected", "type": "BadRequestError"},
    ],
    ids=["openrouter", "vllm", "vllm-unwrapped"],
)
def test_an_error_chunk_mid_stream_ends_the_sdk_stream_with_its_message(
    box: Box, fake: FakeOpenAI, error_event: dict[str, Any]
) -> None:
    email, key = box.new_user("1")
    start = box.balance(email)[0]
    fake.push(
        Reply(raw=[b": OPENROUTER PROCESSING\n\n", event(chunk("Hi")), event(error_event), DONE])
    )
    chunks, failure = stream(box, key)
    assert text_of(chunks) == "Hi"
    assert failure is not None and "Provider disconnected" in str(failure)
    assert box.balance(email) == (start, 0)
    assert only_row(box, email)["status"] == "error"


def test_azure_empty_first_chunk_and_n2_indexes_pass_through(box: Box, fake: FakeOpenAI) -> None:
    _, key = box.new_user("1")
    filters = BASE | {"id": "", "choices": [], "prompt_filter_results": [{"prompt_index": 0}]}
    body = [chunk("A"), chunk("B", index=1), chunk(None, "stop"), chunk(None, "stop", 1)]
    fake.push(Reply(raw=[event(filters), *map(event, body), event(usage_chunk()), DONE]))
    chunks, failure = stream(box, key, n=2, stream_options={"include_usage": True})
    assert failure is None
    assert (text_of(chunks, 0), text_of(chunks, 1)) == ("A", "B")
    assert chunks[-1].id == "chatcmpl-w1", "the usage chunk carries the completion's id"
    assert chunks[-1].usage.completion_tokens == 4
    assert fake.requests[-1].body["n"] == 2


@pytest.mark.parametrize("streamed", [False, True])
def test_gzip_answers_are_decoded(box: Box, fake: FakeOpenAI, streamed: bool) -> None:
    _, key = box.new_user("1")
    fake.push(Reply(content="zipped reply", gzip=True))
    if streamed:
        chunks, failure = stream(box, key)
        assert failure is None and text_of(chunks) == "zipped reply"
    else:
        done = box.sdk(key).chat.completions.create(model=MODEL, messages=HELLO)
        assert done.choices[0].message.content == "zipped reply"
    assert fake.requests[-1].headers["accept-encoding"] == "identity"


def test_cached_and_reasoning_token_details_reach_the_client(box: Box, fake: FakeOpenAI) -> None:
    _, key = box.new_user("1")
    usage = USAGE | {"prompt_tokens_details": {"cached_tokens": 8},
                     "completion_tokens_details": {"reasoning_tokens": 3}}  # fmt: skip
    message = {"role": "assistant", "content": "hi"}
    answer = {"id": "c", "object": "chat.completion", "created": 1, "model": "up", "usage": usage,
              "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}  # fmt: skip
    fake.push(Reply(raw=[json.dumps(answer).encode()], content_type="application/json"))
    done = box.sdk(key).chat.completions.create(model=MODEL, messages=HELLO)
    assert done.usage is not None and done.usage.prompt_tokens_details is not None
    assert done.usage.prompt_tokens_details.cached_tokens == 8
    assert done.usage.completion_tokens_details.reasoning_tokens == 3  # type: ignore[union-attr]


@pytest.mark.parametrize("streamed", [False, True])
def test_an_answer_without_usage_is_charged_an_estimate_not_free(
    box: Box, fake: FakeOpenAI, streamed: bool
) -> None:
    email, key = box.new_user("1")
    start = box.balance(email)[0]
    fake.push(Reply(content="twelve chars", usage=False))
    if streamed:
        chunks, failure = stream(box, key, stream_options={"include_usage": True})
        assert failure is None
        shown = chunks[-1].usage
    else:
        raw = box.sdk(key).chat.completions.with_raw_response.create(model=MODEL, messages=HELLO)
        shown = raw.parse().usage
        assert Decimal(raw.headers["x-codelace-cost-usd"]) == Decimal(str(shown.cost_usd))
    row = only_row(box, email)
    assert (row["status"], row["estimated"], row["output_tokens"]) == ("ok", 1, 3)
    assert row["input_tokens"] > 0 and row["cost_nanos"] > 0
    assert (shown.prompt_tokens, shown.completion_tokens) == (row["input_tokens"], 3)
    assert box.balance(email) == (start - row["cost_nanos"], 0)


def test_ollama_string_errors_keep_their_status_and_message(box: Box, fake: FakeOpenAI) -> None:
    _, key = box.new_user("1")
    # (its 404 for a model it does not have is the operator's setup: test_forbidden_pages.py)
    body = b'{"error":"invalid character \'x\' looking for beginning of value"}'
    fake.push(Reply(status=400, raw=[body], content_type="application/json"))
    with pytest.raises(openai.BadRequestError) as caught:
        box.sdk(key).chat.completions.create(model=MODEL, messages=HELLO)
    assert caught.value.message.endswith("invalid character 'x' looking for beginning of value")


def test_openrouter_error_in_a_200_body_is_a_502_with_its_message(
    box: Box, fake: FakeOpenAI
) -> None:
    email, key = box.new_user("1")
    start = box.balance(email)[0]
    body = b'{"error":{"code":502,"message":"Provider returned error: upstream idle timeout"}}'
    fake.push(Reply(raw=[body], content_type="application/json"))
    with pytest.raises(openai.InternalServerError) as caught:
        box.sdk(key).chat.completions.create(model=MODEL, messages=HELLO)
    assert caught.value.status_code == 502
    assert "upstream idle timeout" in caught.value.message
    assert box.balance(email) == (start, 0)


OPENROUTER_USAGE = USAGE | {
    "cost": 0.95,
    "is_byok": False,
    "cost_details": {"upstream_inference_cost": 19},
    "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 100},
}


@pytest.mark.parametrize("streamed", [False, True])
def test_openrouter_usage_never_shows_the_operators_cost(
    box: Box, fake: FakeOpenAI, streamed: bool
) -> None:
    """OpenRouter puts what it billed the operator in `usage.cost`: the user sees only the
    price they pay (`cost_usd`), never the operator's cost (a client reading `usage.cost`
    would take it for its own spend)."""
    _, key = box.new_user("1")
    if streamed:
        body = [
            event(chunk("Hi")),
            event(chunk(None, "stop")),
            event(usage_chunk(OPENROUTER_USAGE)),
        ]
        fake.push(Reply(raw=[*body, DONE]))
        chunks, failure = stream(box, key, stream_options={"include_usage": True})
        assert failure is None
        shown = chunks[-1].usage.model_dump(exclude_none=True)
    else:
        choice = {"index": 0, "message": {"role": "assistant", "content": "Hi"}}
        answer = {"id": "gen-1", "object": "chat.completion", "created": 1, "model": "up",
                  "provider": "OpenAI", "usage": OPENROUTER_USAGE, "choices": [choice]}  # fmt: skip
        fake.push(Reply(raw=[json.dumps(answer).encode()], content_type="application/json"))
        with box.http(key) as http:
            shown = http.post("/v1/chat/completions", json={"model": MODEL, "messages": HELLO})
            shown = shown.json()["usage"]
    assert not {"cost", "cost_details", "is_byok"} & set(shown), shown
    assert shown["cost_usd"] == float(Decimal(cost_nanos(10, 4, IN_PRICE, OUT_PRICE)) / 10**9)
    assert shown["prompt_tokens_details"]["cache_write_tokens"] == 100


@pytest.mark.parametrize("asked", [False, True])
def test_usage_riding_on_the_last_content_chunk_is_billed_not_relayed(
    box: Box, fake: FakeOpenAI, asked: bool
) -> None:
    """Some servers put usage on the finish chunk instead of a `choices: []` chunk: it is
    billed, and the client sees usage only in the gateway's own chunk (with cost_usd), and
    only when it asked, as with OpenAI."""
    email, key = box.new_user("1")
    start = box.balance(email)[0]
    last = chunk(None, "stop") | {"usage": OPENROUTER_USAGE}
    fake.push(Reply(raw=[event(chunk("Hi")), event(last), DONE]))
    options = {"stream_options": {"include_usage": True}} if asked else {}
    chunks, failure = stream(box, key, **options)
    assert failure is None and text_of(chunks) == "Hi"
    with_usage = [c.usage for c in chunks if c.usage is not None]
    assert len(with_usage) == int(asked)
    if asked:
        assert with_usage[0].cost_usd and not chunks[-1].choices
    assert box.balance(email) == (start - cost_nanos(10, 4, IN_PRICE, OUT_PRICE), 0)


NGINX_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.25.3</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


def test_a_proxys_html_error_page_is_a_502_naming_its_title(box: Box, fake: FakeOpenAI) -> None:
    email, key = box.new_user("1")
    start = box.balance(email)[0]
    fake.default = Reply(status=502, raw=[NGINX_502], content_type="text/html")
    with pytest.raises(openai.InternalServerError) as caught:
        box.sdk(key).chat.completions.create(model=MODEL, messages=HELLO)
    assert caught.value.status_code == 502
    assert caught.value.message.endswith("(HTTP 502): an HTML page: 502 Bad Gateway")
    assert box.balance(email) == (start, 0)


def test_the_sdks_own_retries_after_429_and_5xx_charge_only_the_call_that_answered(
    box: Box, fake: FakeOpenAI
) -> None:
    """The SDK retries the box's 429 (after its Retry-After) and 502 by itself: every failed
    attempt is free, the one that answered is charged once. The box asks its one key once for
    a 429 (asked again at once, it answers the same) and three times for a 500."""
    email, key = box.new_user("1")
    start = box.balance(email)[0]
    limited = {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}
    box_retries = 3  # the box's own tries per call on a 5xx (gateway.max_retries = 2)
    fake.push(Reply(status=429, error=limited, headers={"retry-after": "1"}))
    fake.push(*[Reply(status=500)] * box_retries, Reply(content="at last"))
    client = openai.OpenAI(
        base_url=box.url + "/v1", api_key=key, max_retries=2, http_client=sdk_http(openai)
    )
    began = time.monotonic()
    done = client.chat.completions.with_raw_response.create(model=MODEL, messages=HELLO)
    assert time.monotonic() - began >= 0.9, "the SDK waited for the box's Retry-After"
    assert done.parse().choices[0].message.content == "at last"
    assert len(fake.requests) == 1 + box_retries + 1
    rows = box.query(
        'SELECT r.status, r.cost_nanos FROM usage_record r JOIN "user" u ON u.id = r.user_id '
        "WHERE u.email = ? ORDER BY r.id",
        email,
    )
    cost = cost_nanos(11, 2, IN_PRICE, OUT_PRICE)
    assert rows == [("error", 0), ("error", 0), ("ok", cost)]
    assert box.balance(email) == (start - cost, 0)
    assert Decimal(done.headers["x-codelace-cost-usd"]) * 10**9 == cost


def test_upstream_comments_do_not_silence_the_boxs_own_keepalives(
    box: Box, fake: FakeOpenAI
) -> None:
    """OpenRouter sends `: OPENROUTER PROCESSING` while a model thinks; those bytes are not
    relayed, so the client must still get the box's keep-alive comments while nothing else
    comes (proxies in front of it cut connections silent for 60 s)."""
    _, key = box.new_user("1")
    processing = [b": OPENROUTER PROCESSING\n\n"] * 10  # 1.5 s of comments, 0.15 s apart
    body = [event(chunk("Hi")), event(chunk(None, "stop")), event(usage_chunk()), DONE]
    fake.push(Reply(raw=[*processing, *body], piece_delay=0.15))
    request = {"model": MODEL, "messages": HELLO, "stream": True}
    with box.http(key) as http, http.stream("POST", "/v1/chat/completions", json=request) as sent:
        raw = sent.read()
    assert raw.count(b": keep-alive\n\n") >= 2, raw
    assert b"OPENROUTER" not in raw and raw.endswith(DONE)


@pytest.mark.parametrize("streamed", [False, True])
def test_the_upstream_gets_the_head_the_box_means(
    box: Box, fake: FakeOpenAI, streamed: bool
) -> None:
    """What aiohttp adds by itself: Host, Content-Length, never its User-Agent (nor the client's:
    the SDK's `OpenAI/Python` stays between the client and the box)."""
    _, key = box.new_user("1")
    fake.push(Reply(content="hi"))
    if streamed:
        chunks, failure = stream(box, key)
        assert failure is None and text_of(chunks) == "hi"
    else:
        done = box.sdk(key).chat.completions.create(model=MODEL, messages=HELLO)
        assert done.choices[0].message.content == "hi"
    headers = fake.requests[-1].headers
    assert sorted(headers) == [
        "accept", "accept-encoding", "authorization", "content-length", "content-type", "host",
    ]  # fmt: skip
    assert headers["accept"] == ("text/event-stream" if streamed else "application/json")
    assert headers["accept-encoding"] == "identity"
    assert headers["content-type"] == "application/json"
    assert headers["content-length"].isdigit() and int(headers["content-length"]) > 0
