"""Chat Completions answers -> Responses API objects: the response, its output items, usage.

Pure code shared by the non-streamed answer and the stream translator (responses_stream).
The shapes follow OpenAI's Responses reference and what its SDKs and Codex CLI parse:

- `response`: id `resp_...`, `object: "response"`, `created_at`, `completed_at` (once
  completed), `status` (`completed`, or `incomplete` with `incomplete_details.reason`
  `max_output_tokens` / `content_filter`, or `failed` with `error {code, message}`), `model`,
  `output`, `usage`, and the request's options echoed (instructions, tools, tool_choice,
  temperature, ...: the SDKs require some of them).
- output items: `reasoning` {id, summary: [], content: [reasoning_text] (or, for Claude's thinking
  when `reasoning.summary` asks, summary: [summary_text] and no content), encrypted_content (the
  signed thinking blocks, or OpenRouter's sealed reasoning details, when asked for)},
  `message` {id, role assistant, status, content: [output_text {text, annotations: []} or
  refusal {refusal} (a chat `refusal`)]},
  `function_call` {id, call_id, name, arguments (a JSON string)}, `custom_tool_call` {id,
  call_id, name, input}.
- `usage`: input_tokens, input_tokens_details {cached_tokens, cache_write_tokens},
  output_tokens, output_tokens_details {reasoning_tokens}, total_tokens. Codex reads the details
  and fails on a `response.completed` whose details lack their counts, so they are always there.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from codelace_box.jsonwire import NOT_JSON, loads
from codelace_box.providers.base import Usage
from codelace_box.providers.call_keys import arguments_of
from codelace_box.providers.chat_text import content_text, reasoning_text
from codelace_box.providers.reasoning_details import details_of, seal
from codelace_box.providers.responses_input import chat_reasoning_id, encode_thinking
from codelace_box.providers.responses_request import ResponsesContext
from codelace_box.providers.thought_signature import signature_of, signed_id

JSON = dict[str, Any]

RATE_LIMIT_CODES = ("rate_limit_exceeded", "rate_limited", "rate_limit_error")
KEPT_CODES = ("context_length_exceeded", "insufficient_quota", "invalid_prompt")  # Codex stops
INCOMPLETE_REASONS = {"length": "max_output_tokens", "content_filter": "content_filter"}
_PART_KEYS = (("content", "output_text"), ("refusal", "refusal"))  # chat message key -> part


def new_id(prefix: str) -> str:
    """An id in OpenAI's style: `resp_`, `msg_`, `fc_`, `ctc_` or `rs_` and 48 hex digits."""
    return f"{prefix}_{secrets.token_hex(24)}"


def new_call_id() -> str:
    """A tool call id in OpenAI's form (`call_` and 24 characters) for a call whose upstream gave
    none: it goes back upstream with the call's output, and OpenAI's Chat Completions refuses
    ids over 40 characters."""
    return f"call_{secrets.token_hex(12)}"


def own_call_id(given: str, issued: set[str]) -> str:
    """A call's id for its item: the upstream's, unless it gave none or an earlier call of the
    same answer has it (DeepSeek, GLM and Kimi-style servers give parallel calls one id; the
    openai SDK's stream helper refuses two items of one call_id, and Codex could not tell
    their outputs apart): then one of its own, which goes back upstream with the call's output.
    `issued` gets the id given."""
    call_id = given if given and given not in issued else new_call_id()
    issued.add(call_id)
    return call_id


def _count(details: Any, name: str) -> int:
    value = details.get(name) if isinstance(details, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def responses_usage(usage: Usage, extra: JSON | None = None) -> JSON:
    """The Responses `usage` for our Usage; `extra` (e.g. `cost_usd`) is added as is."""
    prompt = usage.details.get("prompt_tokens_details")
    completion = usage.details.get("completion_tokens_details")
    body: JSON = {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {
            "cached_tokens": _count(prompt, "cached_tokens"),
            "cache_write_tokens": _count(prompt, "cache_write_tokens"),
        },
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": _count(completion, "reasoning_tokens")},
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }
    body.update(extra or {})
    return body


def status_for(finish_reason: Any, refused: bool = False) -> tuple[str, JSON | None]:
    """(status, incomplete_details) for a chat finish_reason. A content filter's stop that
    gave a refusal (Claude's, providers/anthropic_response.py) is a completed response with a
    refusal part, as OpenAI reports a refusal (Codex retries an incomplete one); not for a
    compaction, whose empty summary Codex would take for the thread."""
    if refused and finish_reason == "content_filter":
        return "completed", None
    reason = INCOMPLETE_REASONS.get(finish_reason) if isinstance(finish_reason, str) else None
    return ("incomplete", {"reason": reason}) if reason else ("completed", None)


def response_object(
    context: ResponsesContext,
    *,
    response_id: str,
    model: str,
    created_at: int,
    status: str,
    output: list[JSON],
    usage: JSON | None = None,
    error: JSON | None = None,
    incomplete_details: JSON | None = None,
) -> JSON:
    """A Responses `response` object (also the payload of the stream's lifecycle events)."""
    body: JSON = {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "completed_at": int(time.time()) if status == "completed" else None,
        "background": False,
        "error": error,
        "incomplete_details": incomplete_details,
        "model": model,
        "output": output,
        "previous_response_id": None,
    }
    body.update(context.echo)
    body.setdefault("parallel_tool_calls", True)
    body.setdefault("tool_choice", "auto")
    body.setdefault("tools", [])
    body["usage"] = usage
    return body


def message_item(item_id: str, text: str, status: str = "completed") -> JSON:
    """An assistant `message` output item with one output_text part."""
    return message_with(item_id, [text_part(text)] if status != "in_progress" else [], status)


def message_with(item_id: str, parts: list[JSON], status: str = "completed") -> JSON:
    """An assistant `message` output item with these content parts."""
    return {"id": item_id, "type": "message", "status": status, "role": "assistant",
            "content": parts}  # fmt: skip


def text_part(text: str) -> JSON:
    """An `output_text` content part."""
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def refusal_part(text: str) -> JSON:
    """A `refusal` content part: the model declined (OpenAI's shape; the SDKs' structured
    output parsing skips it rather than parse it as the answer)."""
    return {"type": "refusal", "refusal": text}


def content_part(kind: str, text: str) -> JSON:
    """The content part of a kind (`output_text` or `refusal`) with its text."""
    return refusal_part(text) if kind == "refusal" else text_part(text)


def reasoning_item(
    item_id: str, text: str, blocks: list[JSON], context: ResponsesContext,
    details: list[JSON] | None = None,
) -> JSON:  # fmt: skip
    """A `reasoning` output item: the reasoning text (raw `content`, or Claude's summarized
    thinking as the `summary` when asked: ResponsesContext.summarized) and, if asked for, the
    signed blocks (or OpenRouter's reasoning details, sealed for the model:
    providers/reasoning_details.py)."""
    item: JSON = {"id": item_id, "type": "reasoning", "summary": []}
    if text and context.summarized:
        item["summary"] = [{"type": "summary_text", "text": text}]
    elif text:
        item["content"] = [{"type": "reasoning_text", "text": text}]
    if blocks and context.encrypted_reasoning:
        item["encrypted_content"] = encode_thinking(blocks, context.model)
    elif details and context.encrypted_reasoning:
        item["encrypted_content"] = seal(details, context.model)
    return item


def call_item(
    item_id: str, call_id: str, name: str, arguments: str, context: ResponsesContext, status: str
) -> JSON:
    """A `function_call` item, or a `custom_tool_call` for a tool the request declared custom;
    a namespace's tool gets its `namespace` and own name back."""
    item: JSON = {"id": item_id, "type": "function_call", "status": status, "call_id": call_id}
    if name in context.custom_tools:
        item.update(type="custom_tool_call", name=name, input=custom_input(arguments))
    else:
        item.update(name=name, arguments=arguments)
    if name in context.namespaced:
        item["namespace"], item["name"] = context.namespaced[name]
    return item


def custom_input(arguments: str) -> str:
    """A custom tool's raw input from the `{"input": ...}` arguments the chat model gave."""
    try:
        parsed = loads(arguments)
    except NOT_JSON:
        return arguments
    if isinstance(parsed, dict) and isinstance(parsed.get("input"), str):
        return parsed["input"]
    return arguments


def _text_of(message: JSON, name: str) -> str:
    """A chat message's `content` (a string, or a list's text chunks) or `refusal`."""
    if name == "content":
        return content_text(message)
    value = message.get(name)
    return value if isinstance(value, str) else ""


def output_items(message: JSON, context: ResponsesContext) -> list[JSON]:
    """The output items for one chat assistant message, in Responses order."""
    items: list[JSON] = []
    blocks = [b for b in message.get("thinking_blocks") or () if isinstance(b, dict)]
    text, details = reasoning_text(message), details_of(message)
    if text or ((blocks or details) and context.encrypted_reasoning):
        item_id = chat_reasoning_id(context.model)
        items.append(reasoning_item(item_id, text, blocks, context, details))
    texts = {name: _text_of(message, name) for name, _ in _PART_KEYS}
    parts = [content_part(kind, texts[name]) for name, kind in _PART_KEYS if texts[name]]
    if parts:
        items.append(message_with(new_id("msg"), parts))
    issued: set[str] = set()
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            continue
        custom = function.get("name") in context.custom_tools  # its input: raw text
        items.append(
            call_item(
                new_id("ctc" if custom else "fc"),
                signed_id(own_call_id(str(call.get("id") or ""), issued), signature_of(call)),
                str(function.get("name") or ""),
                arguments_of(function) or ("" if custom else "{}"),
                context,
                "completed",
            )
        )
    return items


def translate_completion(
    completion: JSON,
    usage: Usage,
    context: ResponsesContext,
    *,
    response_id: str | None = None,
    usage_extra: JSON | None = None,
) -> JSON:
    """The Responses `response` for a chat completion (already relabelled with our model)."""
    choices = completion.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else {}
    message = choice.get("message") if isinstance(choice, dict) else None
    message = message if isinstance(message, dict) else {}
    refused = bool(_text_of(message, "refusal")) and not context.compaction
    status, incomplete = status_for(choice.get("finish_reason") if choice else None, refused)
    output = output_items(message, context)
    if incomplete and output and "status" in output[-1]:
        output[-1]["status"] = "incomplete"  # the item the answer stopped in, as OpenAI marks it
    created = completion.get("created")
    return response_object(
        context,
        response_id=response_id or new_id("resp"),
        model=str(completion.get("model") or ""),
        created_at=created if isinstance(created, int) else int(time.time()),
        status=status,
        output=output,
        usage=responses_usage(usage, usage_extra),
        incomplete_details=incomplete,
    )


def failure_error(message: str, code: str) -> JSON:
    """The `error` of a failed response. Its `code` is one OpenAI sends: `rate_limit_exceeded`
    for a rate limit (Codex then waits and retries), the upstream's `context_length_exceeded` or
    `insufficient_quota` or `invalid_prompt` as they are (Codex stops and says so instead of
    retrying a request that cannot succeed), else `server_error` (Codex retries a few times)."""
    if code in RATE_LIMIT_CODES:
        return {"code": "rate_limit_exceeded", "message": message}
    return {"code": code if code in KEPT_CODES else "server_error", "message": message}
