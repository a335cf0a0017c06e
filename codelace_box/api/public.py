"""Endpoints that need no key: health, the model list and the price list."""

from __future__ import annotations

from urllib.parse import unquote

from sanic import Blueprint, Request
from sanic.response import HTTPResponse

from codelace_box.api.common import READ, json_response
from codelace_box.api.views import (
    anthropic_model_list_view,
    health_view,
    model_list_view,
    model_view,
    pricing_view,
)
from codelace_box.db.core import ping
from codelace_box.errors import NotFound
from codelace_box.gateway.pipeline import Gateway

bp = Blueprint("public")


@bp.route("/healthz", methods=READ)
async def healthz(request: Request) -> HTTPResponse:
    """Liveness: the process answers and its database is reachable."""
    ping()
    return json_response(health_view())


@bp.route("/v1/models", methods=READ)
async def models(request: Request) -> HTTPResponse:
    """The enabled catalog, in OpenAI's list shape (Anthropic's, with aliases, when the
    request has an `anthropic-version` header)."""
    gateway: Gateway = request.app.ctx.gateway
    if request.headers.get("anthropic-version"):
        named = [(m.id, m) for m in gateway.routes.enabled_models()]
        named += sorted(gateway.routes.aliases().items())
        return json_response(anthropic_model_list_view(named))
    return json_response(model_list_view(gateway.routes.enabled_models()))


@bp.route("/v1/models/<model_id:path>", methods=READ)
async def model(request: Request, model_id: str) -> HTTPResponse:
    """One enabled model (ids contain a slash: /v1/models/openai/gpt-5.4)."""
    gateway: Gateway = request.app.ctx.gateway
    model_id = unquote(model_id)  # SDKs send the slash of an id as %2F
    found = next((m for m in gateway.routes.enabled_models() if m.id == model_id), None)
    if found is None:
        raise NotFound(f"the model {model_id} does not exist", code="model_not_found")
    return json_response(model_view(found))


@bp.route("/api/v1/public/pricing", methods=READ)
async def pricing(request: Request) -> HTTPResponse:
    """USD per 1M input and output tokens of every enabled model."""
    gateway: Gateway = request.app.ctx.gateway
    return json_response(pricing_view(gateway.routes.enabled_models()))
