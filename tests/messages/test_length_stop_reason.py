"""/v1/messages to an `openai` provider: an answer the server cut for length stops for
"max_tokens", whichever word the server used for it (OpenAI's "length", Mistral's
"model_length": the context window filled). Claude Code and the anthropic SDK's callers read
"max_tokens" as a cut answer (to continue it or ask again with more room); "end_turn" would
pass the cut answer as complete."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes.openai_upstream import Reply
from tests.messages.conftest import NEEDS_SDK, OPENAI_ALIAS, MessagesBox

pytestmark = NEEDS_SDK

STORY = [{"role": "user", "content": "Tell me a long story."}]
ASK: dict[str, Any] = {"model": OPENAI_ALIAS, "max_tokens": 100, "messages": STORY}


@pytest.mark.parametrize("finish", ["length", "model_length"])
@pytest.mark.parametrize("streamed", [False, True])
def test_an_answer_cut_for_length_stops_for_max_tokens(
    fresh: MessagesBox, streamed: bool, finish: str
) -> None:
    _, key = fresh.new_key()
    fresh.openai_fake.push(Reply(content="Once upon a", finish_reason=finish))
    client = fresh.client(key)
    if streamed:
        with client.messages.stream(**ASK) as stream:
            message = stream.get_final_message()
    else:
        message = client.messages.create(**ASK)
    assert message.content[0].type == "text" and message.content[0].text == "Once upon a"
    assert (message.stop_reason, message.stop_sequence) == ("max_tokens", None)
