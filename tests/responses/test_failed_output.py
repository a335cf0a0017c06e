"""A translated stream that fails midway ends with `response.failed` whose response carries the
output streamed so far (the item it stopped in marked incomplete), as OpenAI's does and as the
box's native relay already did; the client's own accumulation and the final object agree."""

from __future__ import annotations

from tests.fakes.openai_upstream import Reply
from tests.responses.conftest import OPENAI_MODEL, ResponsesBox


def test_response_failed_carries_the_output_so_far(fresh: ResponsesBox) -> None:
    email, key = fresh.new_key()
    fresh.openai_fake.push(Reply(content="one two three four five six", error_after=3))
    before = fresh.balance_nanos(email)
    with fresh.openai(key).responses.stream(model=OPENAI_MODEL, input="Count") as stream:
        events = list(stream)
    failed = events[-1]
    assert failed.type == "response.failed"
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    (message,) = failed.response.output
    assert message.type == "message" and message.status == "incomplete"
    assert [part.text for part in message.content] == [deltas]  # type: ignore[union-attr]
    assert message.id == events[2].item.id  # type: ignore[union-attr]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert failed.response.usage is None and fresh.balance_nanos(email) == before
