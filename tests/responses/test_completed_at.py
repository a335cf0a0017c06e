"""The response object carries OpenAI's `completed_at` (null until the response completed),
streamed and not, as OpenAI's current Responses API does."""

from __future__ import annotations

import time

from tests.fakes.openai_upstream import Reply
from tests.responses.conftest import OPENAI_MODEL, ResponsesBox


def test_completed_at_is_set_once_completed(fresh: ResponsesBox) -> None:
    _, key = fresh.new_key()
    client = fresh.openai(key)
    fresh.openai_fake.push(Reply(content="Hi."), Reply(content="Hi again."))
    started = int(time.time())
    answer = client.responses.create(model=OPENAI_MODEL, input="Hi")
    assert answer.completed_at is not None and answer.completed_at >= started
    with client.responses.stream(model=OPENAI_MODEL, input="Hi") as stream:
        events = list(stream)
    assert events[0].response.completed_at is None  # type: ignore[union-attr]
    final = events[-1].response  # type: ignore[union-attr]
    assert final.status == "completed" and final.completed_at >= started
