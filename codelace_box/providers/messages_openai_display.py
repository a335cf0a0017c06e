"""Anthropic's `thinking.display: "omitted"` on a Messages call translated to an `openai`
provider (pure code).

Anthropic then answers thinking blocks with an empty `thinking` text, the signature still there
(it carries the thinking back to the model), and streams them with no `thinking_delta`. The
translation does the same with the upstream's reasoning (`reasoning_content`, `reasoning`): the
block stays, its text is left out of it and sealed in its signature (with OpenRouter's reasoning
details, if any: providers/reasoning_details.py), so a tool loop still hands DeepSeek its
reasoning back. `display: "updates"` (Claude Code 2.1.332 in stream-json and on its own screen,
with the thinking-display-updates beta) hides the reasoning too, showing only progress notes
written between tool calls, which an OpenAI-compatible upstream never writes: it is taken as
"omitted". The field itself goes nowhere: the Chat Completions body is built anew
(providers/messages_openai.py).
"""

from __future__ import annotations

from typing import Any

from codelace_box.providers.base import JSON, StreamTranslator, Usage
from codelace_box.providers.messages_openai import MessagesToOpenAI
from codelace_box.providers.messages_openai_stream import OpenAIToMessagesStream
from codelace_box.providers.reasoning_details import seal, unseal, with_reasoning

HIDING_DISPLAYS = ("omitted", "updates")  # thinking.display values that keep reasoning unseen


def omits_thinking(body: JSON) -> bool:
    """Whether a Messages body asks for its thinking text to be left out."""
    thinking = body.get("thinking")
    return isinstance(thinking, dict) and thinking.get("display") in HIDING_DISPLAYS


class MessagesToOpenAIOmitted(MessagesToOpenAI):
    """The translation for a call with `thinking.display: "omitted"`."""

    def parse_response(self, payload: JSON, public_model: str) -> tuple[JSON, Usage]:
        """The answer with each thinking block's text moved into its signature."""
        answer, usage = super().parse_response(payload, public_model)
        sealer = self.model or public_model
        answer["content"] = [_sealed(block, sealer) for block in answer.get("content") or []]
        return answer, usage

    def stream_translator(self, public_model: str) -> StreamTranslator:
        """The stream with no thinking text (its thinking blocks start, are signed and stop)."""
        translator = super().stream_translator(public_model)
        if isinstance(translator, OpenAIToMessagesStream):
            translator.omitted = True
        return translator


def _sealed(block: Any, model: str) -> Any:
    """A thinking block with its text left out and sealed in its signature."""
    if not isinstance(block, dict) or block.get("type") != "thinking" or not block["thinking"]:
        return block
    details = with_reasoning(unseal(block.get("signature"), model), block["thinking"])
    return {**block, "thinking": "", "signature": seal(details, model)}
