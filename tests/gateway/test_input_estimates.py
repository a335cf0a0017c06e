"""The input estimate charged when an upstream never counted a request (tally.py): never far
below what a tokenizer could count (at most a token per UTF-8 byte), never far above it either:
inline media (base64 images, PDFs) is a media part's tokens, not a quarter token per base64
character, in each dialect's body."""

from __future__ import annotations

import base64
import json
import os

import pytest

from codelace_box.gateway.metering import BYTES_PER_TOKEN_ESTIMATE
from codelace_box.providers.tally import (
    CHARS_PER_TOKEN,
    ESTIMATED_MEDIA_TOKENS,
    input_estimate,
    request_media,
    text_tokens,
)
from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.gateway.conftest import IN_PRICE, MODEL, NANOS, OUT_PRICE, BoxFactory, cost_nanos

PROMPT = "Describe this picture in detail. " * 10
DATA = base64.b64encode(os.urandom(600_000)).decode()  # 800 KB of base64
URL = f"data:image/png;base64,{DATA}"


def _estimate(body: dict[str, object], messages_api: bool = False) -> int:
    return input_estimate(body, request_media(body, messages_api))


def _text_bound(body: dict[str, object]) -> int:
    """What the body's text without its inline payload could be counted at most, over four."""
    return len(json.dumps(body, separators=(",", ":")).replace(URL, "").replace(DATA, "")) // 4


def test_a_chat_image_is_one_media_part_not_its_base64() -> None:
    content = [{"type": "text", "text": PROMPT}, {"type": "image_url", "image_url": {"url": URL}}]
    body = {"model": "m", "messages": [{"role": "user", "content": content}]}
    assert request_media(body, False) == (1, len(URL))
    estimate = _estimate(body)
    assert _text_bound(body) + ESTIMATED_MEDIA_TOKENS <= estimate
    assert estimate < _text_bound(body) + ESTIMATED_MEDIA_TOKENS + 100


def test_a_messages_pdf_and_image_are_media_and_tool_blocks_are_text() -> None:
    pdf = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                          "data": DATA}}  # fmt: skip
    image = {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}
    use = {"type": "tool_use", "id": "t1", "name": "Read", "input": {"file_path": "/a"}}
    result = {"type": "tool_result", "tool_use_id": "t1", "content": [image]}
    messages = [{"role": "user", "content": [pdf, {"type": "text", "text": PROMPT}]},
                {"role": "assistant", "content": [{"type": "thinking", "thinking": "hm",
                                                    "signature": "s"}, use]},
                {"role": "user", "content": [result]}]  # fmt: skip
    body = {"model": "m", "max_tokens": 10, "messages": messages}
    assert request_media(body, True) == (2, len(DATA))
    estimate = _estimate(body, messages_api=True)
    assert _text_bound(body) + 2 * ESTIMATED_MEDIA_TOKENS <= estimate
    assert estimate < _text_bound(body) + 2 * ESTIMATED_MEDIA_TOKENS + 100


def test_a_native_responses_image_and_file_are_media() -> None:
    tool_image = {"type": "input_image", "image_url": "https://example.com/b.png"}
    items = [{"role": "user", "content": [{"type": "input_text", "text": PROMPT},
                                          {"type": "input_image", "image_url": URL},
                                          {"type": "input_file", "file_data": URL}]},
             {"type": "function_call_output", "call_id": "c", "output": [tool_image]}]  # fmt: skip
    body = {"model": "m", "instructions": "Be brief.", "input": items}
    assert request_media(body, False) == (3, 2 * len(URL))
    estimate = _estimate(body)
    assert _text_bound(body) + 3 * ESTIMATED_MEDIA_TOKENS <= estimate


def test_text_is_never_counted_below_a_token_per_four_bytes_nor_rare_characters_below_one() -> None:
    for text in ("𓀀𓁐𓂀" * 1000, "👩‍👩‍👧‍👦" * 500, "z\u0301\u0302\u0303" * 1000, "\u200b" * 4000,
                 "0123456789" * 1000, "\t \n" * 2000):  # fmt: skip
        body = {"model": "m", "messages": [{"role": "user", "content": text}]}
        estimate = _estimate(body)
        assert estimate >= sum(1 for c in text if not c.isascii())  # a token each at least
        assert estimate * 4 >= len(text.encode())  # never below a token per four bytes


@pytest.mark.timeout(120)
@pytest.mark.parametrize("streamed", [False, True])
def test_a_screenshot_the_upstream_never_counted_is_charged_a_media_part(
    box_factory: BoxFactory, fake: FakeOpenAI, streamed: bool
) -> None:
    """An upstream that never reports usage (a server ignoring include_usage) and a 400 KB
    inline screenshot: the input charged is the text and one media part, not the 136,000
    tokens its base64 made at a quarter token a character (held for: the context window)."""
    box = box_factory()
    email, key = box.new_user("1")
    fake.push(Reply(content="A cat.", usage=False))
    image_url = "data:image/png;base64," + base64.b64encode(os.urandom(400_000)).decode()
    content = [
        {"type": "text", "text": PROMPT},
        {"type": "image_url", "image_url": {"url": image_url}},
    ]
    body = {"model": MODEL, "messages": [{"role": "user", "content": content}], "stream": streamed}
    with box.http(key) as http:
        answer = http.post("/v1/chat/completions", json=body)
    assert answer.status_code == 200, answer.text
    row = box.settled_row(answer.headers["x-request-id"])
    assert row["estimated"] == 1
    assert ESTIMATED_MEDIA_TOKENS < row["input_tokens"] < ESTIMATED_MEDIA_TOKENS + 500
    assert row["cost_nanos"] == cost_nanos(row["input_tokens"], row["output_tokens"], IN_PRICE,
                                           OUT_PRICE)  # fmt: skip
    assert box.balance(email) == (NANOS - row["cost_nanos"], 0)


@pytest.mark.parametrize("streamed", [False, True])
def test_a_messages_call_never_counted_is_charged_the_estimate_of_its_media(
    box_factory: BoxFactory, fake: FakeOpenAI, streamed: bool
) -> None:
    """/v1/messages with images, to an upstream that never reports usage: the input charged
    is the request's estimate (tally.py), its media as the admission found them (the
    settlement takes that walk's result instead of walking the blocks again)."""
    box = box_factory()
    email, key = box.new_user("1")
    fake.push(Reply(content="Two cats.", usage=False))
    image = {
        "type": "image",
        "source": {
            "type": "base64",
            "media_type": "image/png",
            "data": base64.b64encode(os.urandom(90_000)).decode(),
        },
    }
    tool = {
        "type": "tool_result",
        "tool_use_id": "t1",
        "content": [image, {"type": "text", "text": "ok"}],
    }
    content = [image, tool, {"type": "text", "text": PROMPT}]
    body = {"model": MODEL, "max_tokens": 100, "stream": streamed,
            "messages": [{"role": "user", "content": content}]}  # fmt: skip
    sent = json.dumps(body).encode()
    with box.http(key) as http:
        answer = http.post("/v1/messages", content=sent, headers={"x-api-key": key,
                           "content-type": "application/json"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    row = box.settled_row(answer.headers["x-request-id"])
    media = request_media(body, messages_api=True)
    assert media[0] == 2
    by_bytes = -(-len(sent) // BYTES_PER_TOKEN_ESTIMATE) - media[1] // CHARS_PER_TOKEN
    assert (row["estimated"], row["input_tokens"]) == (1, max(by_bytes, _estimate(body, True)))
    assert box.balance(email) == (NANOS - row["cost_nanos"], 0)


def test_characters_past_the_basic_plane_count_their_bytes() -> None:
    """An emoji, a hieroglyph, a rare CJK ideograph: four UTF-8 bytes, which a byte-level
    tokenizer without a merge for them counts as four tokens; counted one a character, 100 KB
    of them were charged a quarter of their tokens when the upstream never said."""
    text = "𓀀𓁐𓂀𠀋𪚥🀄" * 4000
    body = {"model": "m", "messages": [{"role": "user", "content": text}]}
    assert _estimate(body) >= len(text.encode())
    assert text_tokens("数据分析") == 4  # the basic plane's characters stay a token each


@pytest.mark.timeout(120)
def test_emoji_the_upstream_never_counted_are_charged_their_bytes(
    box_factory: BoxFactory, fake: FakeOpenAI
) -> None:
    """24,000 characters past the basic plane (96 KB) to a server that never reports usage: the
    input charged is at least their bytes, not the 24,000 tokens of one a character."""
    box = box_factory()
    _, key = box.new_user("1")
    fake.push(Reply(content="Nice.", usage=False))
    text = "𓀀𓁐𓂀𠀋𪚥🀄" * 4000
    body = {"model": MODEL, "messages": [{"role": "user", "content": text}]}
    with box.http(key) as http:
        answer = http.post("/v1/chat/completions", json=body)
    assert answer.status_code == 200, answer.text
    row = box.settled_row(answer.headers["x-request-id"])
    assert row["estimated"] == 1 and row["input_tokens"] >= len(text.encode())
