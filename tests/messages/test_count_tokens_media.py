"""count_tokens of a model the box estimates (an `openai` provider): media is counted as the hold
counts it, its inline base64 left out, not as text a token per four characters (which filled
Claude Code's /context with a screenshot). Plain HTTP against the real box."""

from __future__ import annotations

import base64
import os

import httpx

from codelace_box.gateway.count_tokens import estimated_count
from codelace_box.providers.tally import ESTIMATED_MEDIA_TOKENS
from tests.messages.conftest import OPENAI_ALIAS, MessagesBox
from tests.support import TLS

QUESTION = "What do the screenshot and the PDF say? " * 10


def _media(kind: str, media_type: str, size: int) -> dict[str, object]:
    data = base64.b64encode(os.urandom(size)).decode()
    return {"type": kind, "source": {"type": "base64", "media_type": media_type, "data": data}}


def media_body(size: int) -> dict[str, object]:
    content = [_media("image", "image/png", size), _media("document", "application/pdf", size),
               {"type": "text", "text": QUESTION}]  # fmt: skip
    return {"model": OPENAI_ALIAS, "messages": [{"role": "user", "content": content}]}


def test_the_estimate_leaves_inline_media_out_and_counts_each_part() -> None:
    body = media_body(300_000)
    body_len = len(httpx.Request("POST", "http://x", json=body).content)
    counted = estimated_count(body, body_len)
    assert 2 * ESTIMATED_MEDIA_TOKENS <= counted < 2 * ESTIMATED_MEDIA_TOKENS + 1_000
    text_only = {"model": OPENAI_ALIAS, "messages": [{"role": "user", "content": QUESTION}]}
    text_len = len(httpx.Request("POST", "http://x", json=text_only).content)
    assert estimated_count(text_only, text_len) * 4 >= len(QUESTION)


def test_a_url_image_counts_as_media_and_a_text_document_as_text() -> None:
    url = {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}
    text_doc = {"type": "document", "source": {"type": "text", "media_type": "text/plain",
                                               "data": "x" * 40_000}}  # fmt: skip
    body = {"model": OPENAI_ALIAS, "messages": [{"role": "user", "content": [url, text_doc]}]}
    body_len = len(httpx.Request("POST", "http://x", json=body).content)
    assert estimated_count(body, body_len) >= ESTIMATED_MEDIA_TOKENS + 10_000


def test_count_tokens_of_attachments_on_an_openai_model(fresh: MessagesBox) -> None:
    """A 300 KB screenshot and a 300 KB PDF on an openai model: about two media parts' worth of
    tokens (as /v1/messages would be charged when the upstream never counted), not the 270k
    tokens of their 800 KB of base64; still nothing called, nothing charged."""
    email, key = fresh.new_key()
    before = fresh.balance_nanos(email)
    answer = httpx.post(
        f"{fresh.server.base_url}/v1/messages/count_tokens",
        json=media_body(300_000),
        headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
        timeout=30,
        verify=TLS,
    )
    assert answer.status_code == 200, answer.text
    counted = answer.json()["input_tokens"]
    assert 2 * ESTIMATED_MEDIA_TOKENS <= counted < 2 * ESTIMATED_MEDIA_TOKENS + 1_000
    assert fresh.fake.requests == [] and fresh.openai_fake.requests == []
    assert fresh.balance_nanos(email) == before and fresh.usage_rows(email) == []


CJK = "東京の天気は今日とても良いです。明日も晴れるでしょうか。" * 40  # 1,120 characters
EMOJI = "🙂🎉" * 200


def test_count_tokens_of_cjk_text_counts_a_token_a_character_or_more(fresh: MessagesBox) -> None:
    """Counted a token per four bytes, CJK text (three UTF-8 bytes a character, as the SDKs
    send it) came to 0.75 tokens a character: Claude's and OpenAI's tokenizers give about one
    or more, so Claude Code's /context and its compaction ran late on an openai model. Each
    character now counts a token at least, one past the basic plane (an emoji) four, as
    what is charged when a provider never counted does (providers/tally.py)."""
    _, key = fresh.new_key()
    client = fresh.client(key)
    for text, least in ((CJK, len(CJK)), (EMOJI, 4 * len(EMOJI))):
        messages = [{"role": "user", "content": text}]
        counted = client.messages.count_tokens(model=OPENAI_ALIAS, messages=messages)
        assert least <= counted.input_tokens < least + 100, (counted.input_tokens, least)
    assert fresh.fake.requests == [] and fresh.openai_fake.requests == []
