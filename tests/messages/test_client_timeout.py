"""A client's declared timeout and the held-back start of an Anthropic stream.

The box holds a stream's answer back until its content begins (15 s at most) so that an error
event before it can be answered with its status. An SDK set to a shorter timeout gives up on
the answer's head meanwhile and asks again (the anthropic SDK retries a timeout twice by
default): each attempt is read on and charged, three charges for one answer never seen. The
anthropic SDK and the openai npm SDK say their read timeout in `X-Stainless-Timeout`
(seconds): the hold then ends by half of it, the stream starting with message_start and the
pings relayed, as Anthropic sends them at once."""

from __future__ import annotations

import pytest

from tests.fakes.anthropic_upstream import Reply
from tests.messages.conftest import MODEL, NEEDS_SDK, MessagesBox
from tests.support import sdk_http

pytestmark = [NEEDS_SDK, pytest.mark.timeout(60)]
PINGS = [{"type": "ping"}] * 8  # 0.5 s apart: the content begins about 4.5 s in


def test_a_short_sdk_timeout_sees_the_stream_start_and_pays_once(fresh: MessagesBox) -> None:
    import anthropic

    email, key = fresh.new_key()
    client = anthropic.Anthropic(
        base_url=fresh.server.base_url, api_key=key, max_retries=2, timeout=2.5,
        http_client=sdk_http(anthropic),
    )  # fmt: skip
    fresh.fake.script(*[Reply(text="slow hello", extra_events=PINGS, delay_sec=0.5)] * 3)
    ask = [{"role": "user", "content": "hi"}]
    with client.messages.stream(model=MODEL, max_tokens=50, messages=ask) as stream:
        assert stream.get_final_text() == "slow hello"
    assert len(fresh.fake.requests) == 1, "the SDK gave up on the held-back head and asked again"
    assert [row["status"] for row in fresh.usage_rows(email)] == ["ok"]


def test_the_openai_sdk_on_chat_keeps_its_stream_through_the_wait(fresh: MessagesBox) -> None:
    """Chat Completions has no ping: keep-alive comments come as often as the head had to."""
    import openai

    email, key = fresh.new_key()
    client = openai.OpenAI(
        base_url=f"{fresh.server.base_url}/v1", api_key=key, max_retries=2, timeout=2.5,
        http_client=sdk_http(openai),
    )  # fmt: skip
    fresh.fake.script(*[Reply(text="slow hello", extra_events=PINGS, delay_sec=0.5)] * 3)
    chunks = client.chat.completions.create(
        model=MODEL, stream=True, messages=[{"role": "user", "content": "hi"}]
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == "slow hello"
    assert len(fresh.fake.requests) == 1
    assert [row["status"] for row in fresh.usage_rows(email)] == ["ok"]
