"""/v1/responses: OpenAI's Responses API (Codex CLI's), a thin shell like /v1/chat/completions.

The key as for chat, the Responses ingress adapter (gateway/responses.py), then the same
reserve, call, relay and settlement; the answer is written in the Responses dialect
(gateway/dialects.py). Errors use the OpenAI envelope.
"""

from __future__ import annotations

from sanic import Request
from sanic.response import HTTPResponse

from codelace_box.api.blueprint import Blueprint
from codelace_box.api.common import READ, require_auth
from codelace_box.api.errors import envelope
from codelace_box.api.inference import run_call
from codelace_box.errors import NotFound
from codelace_box.gateway.compact import prepare_compact_call
from codelace_box.gateway.responses import prepare_responses_call

bp = Blueprint("responses")


@bp.post("/v1/responses")
async def responses(request: Request) -> HTTPResponse | None:
    """A Responses API call, streaming or not, metered against the caller's balance."""
    return await run_call(request, await require_auth(request), prepare_responses_call)


@bp.post("/v1/responses/compact")
async def compact(request: Request) -> HTTPResponse | None:
    """OpenAI's compaction endpoint: one metered call, answered as a compacted response."""
    return await run_call(request, await require_auth(request), prepare_compact_call)


@bp.route("/v1/responses", methods=READ)
async def responses_websocket(request: Request) -> HTTPResponse:
    """Codex's Responses WebSocket (its built-in `openai` provider tries one first) is not
    served: a 426, which Codex takes as "use HTTPS" at once; a 405 had it reconnect five times
    (about six seconds, "Reconnecting... n/5") before every session fell back."""
    message = "the box serves the Responses API over HTTP only: POST /v1/responses (no WebSocket)"
    return envelope(426, message, "invalid_request_error", "websocket_not_supported")


@bp.route("/v1/responses/<response_id>", methods=[*READ, "DELETE"], name="stored_response")
@bp.post("/v1/responses/<response_id>/cancel", name="stored_response_cancel")
@bp.route("/v1/responses/<response_id>/input_items", methods=READ, name="stored_input_items")
async def stored_response(request: Request, response_id: str) -> HTTPResponse:
    """The SDK's calls on a stored response (retrieve, delete, cancel, input_items): the box
    keeps none (every call is answered as `store: false`), so a 404 saying so, after the key
    is checked as on every /v1 route."""
    await require_auth(request)
    raise NotFound(
        "the box keeps no responses (the Responses API here is stateless: every call is "
        "answered as with store: false), so there is none to retrieve, delete, cancel or list "
        "the input items of",
        code="response_not_found",
    )
