"""Anthropic's stop_reason and stop_sequence for a chat choice's finish_reason, and OpenAI's
finish_reason for another dialect's on the chat route (`chat_finish`), with a message on every
unstreamed choice there (`chat_choice`). Pure: no I/O.

OpenAI's "stop" is a natural end or a stop sequence alike; a server that says which stop
string matched (vLLM's `stop_reason`, SGLang's `matched_stop`) makes it "stop_sequence" with
that string. TGI says "stop_sequence" itself without naming the string: it is then the one the
request's stop sequences tell (the only one asked for, or the only one the text ends with), else
null, as Anthropic's own answers may leave it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

JSON = dict[str, Any]

STOP_REASONS = {
    "stop": "end_turn",
    "stop_sequence": "stop_sequence",  # TGI's, and servers built on it
    "length": "max_tokens",
    "model_length": "max_tokens",  # Mistral's: the context window filled (a cut answer too)
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


# Another dialect's finish_reason from an `openai` provider, in OpenAI's words for the chat
# route (whose clients know stop, length, tool_calls, content_filter and function_call): TGI's
# "stop_sequence" and "eos_token", an Anthropic-minded server's "end_turn", Mistral's
# "model_length" (the context window filled: OpenAI says "length" of either limit).
# /v1/messages reads the upstream's own (stop_of); OpenAI's words are not in here, so they
# cost one look-up.
CHAT_FINISH = {"stop_sequence": "stop", "eos_token": "stop", "end_turn": "stop",
               "model_length": "length"}  # fmt: skip


def chat_finish(choice: JSON) -> None:
    """Put a chat choice's finish_reason in OpenAI's words (CHAT_FINISH), in place."""
    finish = choice.get("finish_reason")
    if finish.__class__ is str and finish in CHAT_FINISH:
        choice["finish_reason"] = CHAT_FINISH[finish]


def chat_choice(choice: JSON, upstream_finish: bool) -> None:
    """An unstreamed chat choice in OpenAI's shape, in place: its finish_reason in OpenAI's
    words (unless the provider keeps its own), and a message on it: `"message": null` or none
    (with usage, so charged) becomes an empty assistant message, as a stream's choice without a
    delta gets an empty delta (the openai SDK reads `choice.message.content`)."""
    if not upstream_finish:
        chat_finish(choice)
    if choice.get("message").__class__ is not dict:
        choice["message"] = {"role": "assistant", "content": None}


def stop_reason(finish_reason: Any) -> str:
    """Anthropic's stop_reason for an OpenAI finish_reason."""
    if not isinstance(finish_reason, str):
        return "end_turn"
    return STOP_REASONS.get(finish_reason, "end_turn")


def stops_of(body: JSON) -> tuple[str, ...]:
    """A Messages body's stop sequences (the strings among them)."""
    stops = body.get("stop_sequences")
    return tuple(s for s in stops if isinstance(s, str) and s) if isinstance(stops, list) else ()


def stop_of(choice: JSON, stops: Sequence[str] = (), text: str = "") -> tuple[str, str | None]:
    """(stop_reason, stop_sequence) for a finished chat choice; `stops`: the request's stop
    sequences, `text`: the answer's text (or its end) to tell which one matched."""
    finish = choice.get("finish_reason")
    if finish in ("stop", "stop_sequence"):
        for name in ("stop_reason", "matched_stop"):
            matched = choice.get(name)
            if isinstance(matched, str) and matched:
                return "stop_sequence", matched
    if finish == "stop_sequence":
        return "stop_sequence", matched_stop(stops, text)
    return stop_reason(finish), None


def matched_stop(stops: Sequence[str], text: str) -> str | None:
    """The stop sequence the request's stops tell matched, or None when they cannot tell."""
    if len(set(stops)) == 1:
        return stops[0]
    ending = {s for s in stops if text.endswith(s)}
    return ending.pop() if len(ending) == 1 else None


def with_calls(reason: str, called: bool) -> str:
    """`tool_use` for an answer that ends in tool calls but whose server said "stop" (OpenAI's
    own for a forced tool_choice, Gemini's stream for any call): Anthropic always says
    "tool_use" then, and the anthropic SDK's tool runner runs the calls of no other turn. And
    `end_turn` for "tool_use" without a call (vLLM's finish_reason "tool_calls" for tool_choice
    "required" when no call was parsed; reasoning models after tool_choice "none"): Anthropic's
    "tool_use" always comes with a tool_use block, which its documented loop takes the first of."""
    if reason == "tool_use" and not called:
        return "end_turn"
    return "tool_use" if called and reason == "end_turn" else reason
