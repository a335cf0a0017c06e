"""/v1/messages to an `openai` provider: a stream the box takes as complete (the upstream
reported its usage, but closed without a finish_reason or `[DONE]`) is charged as an answer and
ends as one in Anthropic's order: the open block stopped, message_delta with the stop reason and
the counts charged, then message_stop."""

from __future__ import annotations

from tests.fakes.openai_upstream import Reply
from tests.messages.conftest import NEEDS_SDK, OPENAI_ALIAS, MessagesBox, openai_chunk

pytestmark = NEEDS_SDK

USAGE = {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}


def test_usage_without_a_finish_ends_the_message_whole(fresh: MessagesBox) -> None:
    email, key = fresh.new_key()
    raw = [
        openai_chunk({"role": "assistant", "content": "Hello"}),
        openai_chunk({"content": "!"}),
        openai_chunk({}, usage=USAGE),
    ]  # then the connection closes: no finish, no [DONE]
    fresh.openai_fake.push(Reply(raw=raw))
    asked = [{"role": "user", "content": "Hi"}]
    with fresh.client(key).messages.stream(
        model=OPENAI_ALIAS, max_tokens=50, messages=asked
    ) as stream:
        kinds = [event.type for event in stream]
        message = stream.get_final_message()
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"], kinds
    assert message.content[0].text == "Hello!" and message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (100, 20)
    row = fresh.usage_rows(email)[-1]
    assert (row["status"], row["input_tokens"], row["output_tokens"]) == ("ok", 100, 20)
