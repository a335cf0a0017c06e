"""A chat completion of an `openai` provider back as a Messages API `message`: reasoning as a
thinking block (OpenRouter's `reasoning_details` sealed in its signature), text (OpenAI's
`refusal` too), tool calls as tool_use blocks with parsed input (arguments that are no JSON
object: `{}`), the stop reason and Anthropic's usage; a choice the server ended with
finish_reason "error" is an UpstreamError (messages_openai_stream.py streams the same). Pure.
"""

from __future__ import annotations

from typing import Any

from codelace_box.errors import UpstreamError
from codelace_box.jsonwire import NOT_JSON, loads
from codelace_box.providers.base import JSON, Usage
from codelace_box.providers.call_keys import arguments_of
from codelace_box.providers.chat_text import reasoning_text
from codelace_box.providers.messages_openai_stream import (
    answer_text,
    anthropic_usage,
    message_id,
    tool_use_id,
)
from codelace_box.providers.openai_errors import failed_finish
from codelace_box.providers.reasoning_details import details_of, seal
from codelace_box.providers.stop_reasons import stop_of, with_calls


def _obj(holder: JSON, name: str) -> JSON:
    value = holder.get(name)
    return value if isinstance(value, dict) else {}


def _input(arguments: Any) -> JSON:
    try:
        value = loads(arguments) if isinstance(arguments, str) and arguments else {}
    except NOT_JSON:
        return {}
    return value if isinstance(value, dict) else {}


def _answered_choice(completion: JSON) -> JSON:
    """A chat completion's first choice; an UpstreamError when the server ended it failed."""
    choices = completion.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    if (failure := failed_finish(choice)) is not None:
        raise UpstreamError(failure, code="upstream_error")
    return choice


def message_from_completion(
    completion: JSON,
    usage: Usage,
    public_model: str,
    catalog_model: str = "",
    earlier: frozenset[str] = frozenset(),
    stops: tuple[str, ...] = (),
) -> JSON:
    """The `message` for a chat completion (its first choice); `catalog_model`: the model its
    reasoning details are sealed for (the catalog id; `public_model` may be an alias);
    `stops`: the request's stop sequences."""
    choice = _answered_choice(completion)
    message = _obj(choice, "message")
    content: list[JSON] = []
    details = details_of(message)
    reasoning = reasoning_text(message)
    if reasoning or details:
        signature = seal(details, catalog_model or public_model) if details else ""
        content.append({"type": "thinking", "thinking": reasoning, "signature": signature})
    text = answer_text(message)
    if text.strip() or (text and not message.get("tool_calls")):  # blank text beside calls: none
        content.append({"type": "text", "text": text})
    issued: set[str] = set()
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        content.append({"type": "tool_use", "id": tool_use_id(call, earlier, issued),
                        "name": function.get("name", ""),
                        "input": _input(arguments_of(function))})  # fmt: skip
    reason, sequence = stop_of(choice, stops, text)
    reason = with_calls(reason, any(block["type"] == "tool_use" for block in content))
    return {
        "id": message_id(completion.get("id")),
        "type": "message",
        "role": "assistant",
        "model": public_model,
        "content": content,
        "stop_reason": reason,
        "stop_sequence": sequence,
        "usage": anthropic_usage(usage),
    }
