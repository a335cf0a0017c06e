"""/v1/embeddings: OpenAI's embeddings API to `openai` providers, metered like any call (the
hold, the settlement on the upstream's prompt tokens, the usage row, `x-codelace-cost-usd`)."""

from __future__ import annotations

from sanic import Request
from sanic.response import HTTPResponse

from codelace_box.api.blueprint import Blueprint
from codelace_box.api.common import require_auth
from codelace_box.api.inference import run_call
from codelace_box.gateway.embeddings import prepare_embeddings_call

bp = Blueprint("embeddings")


@bp.post("/v1/embeddings")
async def embeddings(request: Request) -> HTTPResponse | None:
    """Embeddings of the input, charged at the model's input price."""
    return await run_call(request, await require_auth(request), prepare_embeddings_call)
