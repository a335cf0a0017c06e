"""A conversation Anthropic compacted (server-side compaction, `compact_20260112`) continued on an
`openai` model: the `compaction` block's summary stands for everything before it, as Anthropic
reads it, instead of being dropped while the history it replaced is sent in full."""

from __future__ import annotations

from tests.messages.conftest import OPENAI_ALIAS, MessagesBox

SUMMARY = "Summary: the user asked for the secret word; notes.txt says pelican."
COMPACTED = [
    {"role": "user", "content": "Read notes.txt, it is long. " * 40},
    {"role": "assistant", "content": "The notes are long; they say many things. " * 40},
    {"role": "user", "content": "What was the secret word again?"},
    {"role": "assistant", "content": [
        {"type": "compaction", "content": SUMMARY},
        {"type": "text", "text": "The word is pelican."},
    ]},
    {"role": "user", "content": "Spell it backwards."},
]  # fmt: skip


def test_a_compacted_conversation_goes_on_from_its_summary(fresh: MessagesBox) -> None:
    """The SDK keeps the whole history beside the compaction block (Anthropic drops what comes
    before it): the openai model is sent the summary, then what followed it, and not the
    history it replaced; the summary was dropped, the long history sent in full."""
    _, key = fresh.new_key()
    body = {"model": OPENAI_ALIAS, "max_tokens": 50, "system": "Be brief.",
            "context_management": {"edits": [{"type": "compact_20260112"}]},
            "messages": COMPACTED}  # fmt: skip
    sent = fresh.translated(key, body)
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "assistant", "content": f"{SUMMARY}\n\nThe word is pelican."},
        {"role": "user", "content": "Spell it backwards."},
    ]


def test_a_client_that_kept_only_the_compaction_block(fresh: MessagesBox) -> None:
    """A client that dropped the history itself (as Anthropic allows) and a compaction block
    alone in its turn: the summary is the context the model goes on from."""
    _, key = fresh.new_key()
    messages = [{"role": "assistant", "content": [{"type": "compaction", "content": SUMMARY}]},
                {"role": "user", "content": "Spell it backwards."}]  # fmt: skip
    sent = fresh.translated(key, {"model": OPENAI_ALIAS, "max_tokens": 50,
                                    "messages": messages})  # fmt: skip
    assert sent["messages"] == [
        {"role": "assistant", "content": SUMMARY},
        {"role": "user", "content": "Spell it backwards."},
    ]
