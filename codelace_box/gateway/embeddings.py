"""An embeddings request, checked and priced: the `/v1/embeddings` ingress adapter.

Only `openai` providers serve it. The hold is every body byte as a token at the model's input
price (an input token is never shorter than a byte); no output is produced, so a model without
an output price is fine. The charge is the upstream's `usage.prompt_tokens`; an answer without
it is charged an estimate that is never low and never above the hold: the body's characters (a
quarter token per ASCII one, tally.py), and at least one token per token id sent. No I/O.
"""

from __future__ import annotations

from typing import Any

from codelace_box.errors import InvalidRequest
from codelace_box.gateway.request import ChatCall, new_call
from codelace_box.gateway.routing import RouteTable
from codelace_box.money import token_cost_nanos
from codelace_box.providers.base import JSON
from codelace_box.providers.billed_fields import check_billed_fields
from codelace_box.providers.embeddings import EmbeddingsAdapter

EMBEDDINGS_ROUTE = "/v1/embeddings"
_ADAPTER = EmbeddingsAdapter()
_BASE64_ADAPTER = EmbeddingsAdapter(to_base64=True)  # float lists answered become base64
# vLLM's chat-shaped embeddings (media by URL the hold never counted, or a file:// it opens)
_CHAT_SHAPED = ("messages", "mm_processor_kwargs")


def _bad(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, code="invalid_request", param=param)


def _is_tokens(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(
        isinstance(t, int) and not isinstance(t, bool) for t in value
    )  # fmt: skip


def token_ids_sent(value: Any) -> int:
    """How many token ids the input holds (0 for text): each is one input token exactly."""
    if _is_tokens(value):
        return len(value)
    if isinstance(value, list):
        return sum(len(v) for v in value if _is_tokens(v))
    return 0


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value)  # OpenAI: "cannot be an empty string"


def check_input(value: Any) -> None:
    """A non-empty string, a non-empty list of them, of token ids, or of lists of token ids."""
    if _is_text(value) or _is_tokens(value):
        return
    if isinstance(value, list) and value and all(_is_text(v) or _is_tokens(v) for v in value):
        return
    raise _bad(
        "input must be a non-empty string, or a non-empty array of non-empty strings or token "
        "arrays",
        "input",
    )


def validate_embeddings_body(body: JSON) -> str:
    """The model id of a body whose shape the box relies on."""
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise _bad("model is required and must be a string", "model")
    check_input(body.get("input"))
    for field in _CHAT_SHAPED:
        if field in body:
            raise _bad(
                f"{field} is not a field of the embeddings API: send the text as input", field
            )
    if body.get("stream"):
        raise _bad("embeddings are not streamed", "stream")
    return model


def prepare_embeddings_call(
    routes: RouteTable,
    body: JSON,
    body_len: int,
    *,
    request_id: str,
    user_id: int,
    key_id: int,
    default_context_tokens: int = 0,  # as every ingress adapter takes; text only, so unused
) -> ChatCall:
    """Validate, route and price an embeddings request (nothing is reserved yet)."""
    route = routes.resolve(validate_embeddings_body(body))
    if route.provider.kind != "openai":
        raise _bad(f"{route.id} is not served by an openai provider: no embeddings", "model")
    check_billed_fields(body, route.provider.allowed_fields, route.id)
    adapter = _BASE64_ADAPTER if body.get("encoding_format") == "base64" else _ADAPTER
    hold = token_cost_nanos(body_len, 0, route.input_per_1m_nanos, route.output_per_1m_nanos)
    call = new_call(
        (request_id, user_id, key_id), body, route, adapter, body_len=body_len, output_cap=1,
        hold_nanos=hold, cap_from_client=False, ingress=EMBEDDINGS_ROUTE,
    )  # fmt: skip
    call.input_estimate = max(call.input_estimate, token_ids_sent(body["input"]))
    return call
