"""Anthropic's `search_result` blocks sent to an `openai` model: as text it can read.

Claude Code 2.1.332 answers a citable WebFetch with its page as a search result in the
tool_result (the text in 500-character pieces, `citations` on), and passes search results an
SDK tool returns through the same way; Anthropic also takes them in a user turn. Translated, the
tool message went empty (the model never saw the page) and a user turn's was a 400.
"""

from __future__ import annotations

import httpx

from tests.fakes.openai_upstream import Reply
from tests.messages.conftest import OPENAI_ALIAS, MessagesBox
from tests.support import TLS

URL = "https://docs.example.com/birds"
PAGE = "Birds of the shore.\nThe secret word is pelican, " + "and the tide is low. " * 30
# Claude Code's split of a page (pieces of at most 500 characters ending at a line or a space)
CUT = PAGE.rfind(" ", 0, 500) + 1
PIECES = [PAGE[:CUT], PAGE[CUT:]]
FETCHED = {"type": "search_result", "source": URL, "title": URL, "citations": {"enabled": True},
           "content": [{"type": "text", "text": piece} for piece in PIECES]}  # fmt: skip
FETCH = {"type": "tool_use", "id": "toolu_1", "name": "WebFetch",
         "input": {"url": URL, "prompt": "the secret word"}}  # fmt: skip


def _translated(box: MessagesBox, key: str, messages: list) -> list:
    """The chat messages the OpenAI fake received for these Messages messages."""
    box.openai_fake.push(Reply(content="pelican"))
    body = {"model": OPENAI_ALIAS, "max_tokens": 50, "messages": messages}
    answer = httpx.post(f"{box.server.base_url}/v1/messages", json=body,
                        headers={"x-api-key": key}, timeout=30, verify=TLS)  # fmt: skip
    assert answer.status_code == 200, answer.text
    return list(box.openai_fake.requests[-1].body["messages"])


def test_a_fetched_page_in_a_tool_result_reaches_the_openai_model(fresh: MessagesBox) -> None:
    _, key = fresh.new_key()
    assert PIECES[0].endswith(" ") and "".join(PIECES) == PAGE
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": [FETCHED]}
    sent = _translated(fresh, key, [
        {"role": "user", "content": "What is the secret word on that page?"},
        {"role": "assistant", "content": [FETCH]},
        {"role": "user", "content": [result]},
    ])  # fmt: skip
    assert sent[-1] == {"role": "tool", "tool_call_id": "toolu_1", "content": f"{URL}\n\n{PAGE}"}


def test_a_search_result_in_a_user_turn_is_read_as_text(fresh: MessagesBox) -> None:
    _, key = fresh.new_key()
    found = {"type": "search_result", "source": "kb://birds/7", "title": "Shore birds",
             "content": [{"type": "text", "text": "Pelicans fish."},
                         {"type": "text", "text": "Herons wade."}]}  # fmt: skip
    sent = _translated(fresh, key, [{"role": "user", "content": [
        found, {"type": "text", "text": "What do herons do?"}]}])  # fmt: skip
    assert sent == [{"role": "user", "content": [
        {"type": "text", "text": "Shore birds\nkb://birds/7\n\nPelicans fish.\nHerons wade."},
        {"type": "text", "text": "What do herons do?"}]}]  # fmt: skip
