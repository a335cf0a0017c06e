"""/v1/embeddings: OpenAI's embeddings API to `openai` providers, metered like any call (the
hold, the settlement on the upstream's prompt tokens, the usage row, `x-codelace-cost-usd`)."""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse

from codelace_box.api.common import json_body, require_auth
from codelace_box.api.inference import answer
from codelace_box.gateway.embeddings import prepare_embeddings_call
from codelace_box.gateway.pipeline import Gateway

bp = Blueprint("embeddings")


@bp.post("/v1/embeddings")
async def embeddings(request: Request) -> HTTPResponse | None:
    """Embeddings of the input, charged at the model's input price."""
    auth = require_auth(request)
    body = json_body(request)
    gateway: Gateway = request.app.ctx.gateway
    call = prepare_embeddings_call(
        gateway.routes,
        body,
        len(request.body),
        request_id=request.ctx.request_id,
        user_id=auth.user_id,
        key_id=auth.key_id,
    )
    await gateway.reserve(call)
    return await answer(request, gateway, call)
