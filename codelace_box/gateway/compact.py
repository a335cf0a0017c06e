"""`POST /v1/responses/compact`, OpenAI's compaction endpoint: its ingress adapter (no I/O).

A compaction request (model, input, instructions, prompt_cache_key, ...) is run as the
Responses request of a compaction: its input with `{"type": "compaction_trigger"}` appended,
unstreamed, through `/v1/responses`'s own checks, routing, hold and pricing
(`prepare_responses_call`). A native upstream (`--responses-api`) compacts it on its own
`/responses`; a translated model writes a handoff summary (providers/responses_compaction.py).
The answer is written as OpenAI's compacted response (`compaction_answer`): the input's user
messages followed by the one compaction item; the usage row's route is this one.
"""

from __future__ import annotations

from typing import Any

from codelace_box.errors import InvalidRequest
from codelace_box.gateway.request import DEFAULT_CONTEXT_TOKENS, ChatCall
from codelace_box.gateway.responses import prepare_responses_call
from codelace_box.gateway.routing import RouteTable
from codelace_box.providers.base import JSON
from codelace_box.providers.responses_compaction import TRIGGER, kept_messages

COMPACT_ROUTE = "/v1/responses/compact"


def prepare_compact_call(
    routes: RouteTable,
    body: JSON,
    body_len: int,
    *,
    request_id: str,
    user_id: int,
    key_id: int,
    default_context_tokens: int = DEFAULT_CONTEXT_TOKENS,
) -> ChatCall:
    """Validate, route and price a compaction (nothing is reserved yet)."""
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    if body.get("stream") not in (None, False):
        raise InvalidRequest(
            "stream is not supported: a compaction is answered whole", param="stream"
        )
    items = _items(body.get("input"))
    asked = {**body, "input": [*items, {"type": TRIGGER}], "stream": False}
    call = prepare_responses_call(
        routes, asked, body_len, request_id=request_id, user_id=user_id, key_id=key_id,
        default_context_tokens=default_context_tokens,
    )  # fmt: skip
    call.ingress = COMPACT_ROUTE
    call.kept = kept_messages(items)
    return call


def _items(value: Any) -> list[Any]:
    """The input as items (a string is one user message)."""
    if isinstance(value, str):
        text = {"type": "input_text", "text": value}
        return [{"type": "message", "role": "user", "content": [text]}]
    if isinstance(value, list):
        return value
    if value is None:
        raise InvalidRequest(
            "input is required (the box is stateless: previous_response_id cannot stand in)",
            param="input",
        )
    raise InvalidRequest("input must be a string or a list of items", param="input")
