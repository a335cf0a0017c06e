"""A chat stream is charged the provider's count, which an `openai` provider reports only when
asked with `stream_options.include_usage`: the box asks for it whatever the client sent, so a
client cannot keep the count from the box (and pay an estimate of the text it saw, without the
hidden reasoning tokens) by sending `"stream_options": null`."""

from __future__ import annotations

import httpx
import pytest

from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.gateway.conftest import IN_PRICE, MODEL, OUT_PRICE, Box, BoxFactory, cost_nanos
from tests.support import TLS

pytestmark = pytest.mark.timeout(60)
ASK = [{"role": "user", "content": "think hard"}]
PROMPT, COMPLETION, REASONING = 12, 600, 590  # reasoning tokens are never streamed


@pytest.fixture(scope="module")
def box(box_factory: BoxFactory) -> Box:
    return box_factory()


@pytest.mark.parametrize("options", [None, {}, {"include_usage": False}])
def test_a_stream_is_charged_the_providers_count_whatever_its_stream_options(
    box: Box, fake: FakeOpenAI, options: dict[str, bool] | None
) -> None:
    fake.default = Reply(pieces=["Yes", "."], prompt_tokens=PROMPT, completion_tokens=COMPLETION,
                         reasoning_tokens=REASONING)  # fmt: skip
    _, key = box.new_user("1")
    body = {"model": MODEL, "messages": ASK, "stream": True, "stream_options": options}
    answer = httpx.post(f"{box.url}/v1/chat/completions", json=body, timeout=30,
                        headers={"authorization": f"Bearer {key}"}, verify=TLS)  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert '"usage": {' not in answer.text.replace('"usage":{', '"usage": {')  # not asked for
    assert fake.requests[-1].body["stream_options"] == {"include_usage": True}
    row = box.settled_row(answer.headers["x-request-id"])
    assert (row["input_tokens"], row["output_tokens"], row["estimated"]) == (
        PROMPT, COMPLETION, 0)  # fmt: skip
    assert row["cost_nanos"] == cost_nanos(PROMPT, COMPLETION, IN_PRICE, OUT_PRICE)
