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
