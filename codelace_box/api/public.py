"""Endpoints that need no key: health, the model list and the price list."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from sanic import Blueprint, Request
from sanic.response import HTTPResponse

from codelace_box.api.common import READ, json_response
from codelace_box.errors import NotFound
from codelace_box.gateway.pipeline import Gateway
from codelace_box.gateway.routing import ModelRoute
from codelace_box.money import usd_json

bp = Blueprint("public")


@bp.route("/healthz", methods=READ)
async def healthz(request: Request) -> HTTPResponse:
    """Liveness: the process answers and its database is reachable."""
    request.app.ctx.db.execute_sql("SELECT 1").fetchone()
    return json_response({"status": "ok"})


def _model_view(model: ModelRoute) -> dict[str, Any]:
    return {
        "id": model.id,
        "object": "model",
        "created": model.created,
        "owned_by": model.provider.name,
    }


def _anthropic_view(name: str, model: ModelRoute) -> dict[str, Any]:
    created = datetime.fromtimestamp(model.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"type": "model", "id": name, "display_name": name, "created_at": created}


def _anthropic_models(gateway: Gateway) -> dict[str, Any]:
    """The enabled catalog and its aliases in Anthropic's list shape (one page)."""
    named = [(m.id, m) for m in gateway.routes.enabled_models()]
    named += sorted(gateway.routes.aliases().items())
    data = [_anthropic_view(name, model) for name, model in named]
    first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
    return {"data": data, "has_more": False, "first_id": first, "last_id": last}


@bp.route("/v1/models", methods=READ)
async def models(request: Request) -> HTTPResponse:
    """The enabled catalog, in OpenAI's list shape (Anthropic's, with aliases, when the
    request has an `anthropic-version` header)."""
    gateway: Gateway = request.app.ctx.gateway
    if request.headers.get("anthropic-version"):
        return json_response(_anthropic_models(gateway))
    data = [_model_view(m) for m in gateway.routes.enabled_models()]
    return json_response({"object": "list", "data": data})


@bp.route("/v1/models/<model_id:path>", methods=READ)
async def model(request: Request, model_id: str) -> HTTPResponse:
    """One enabled model (ids contain a slash: /v1/models/openai/gpt-5.4)."""
    gateway: Gateway = request.app.ctx.gateway
    model_id = unquote(model_id)  # SDKs send the slash of an id as %2F
    found = next((m for m in gateway.routes.enabled_models() if m.id == model_id), None)
    if found is None:
        raise NotFound(f"the model {model_id} does not exist", code="model_not_found")
    return json_response(_model_view(found))


@bp.route("/api/v1/public/pricing", methods=READ)
async def pricing(request: Request) -> HTTPResponse:
    """USD per 1M input and output tokens of every enabled model."""
    gateway: Gateway = request.app.ctx.gateway
    return json_response(
        [
            {
                "model": m.id,
                "input_per_1m": usd_json(m.input_per_1m_nanos),
                "output_per_1m": usd_json(m.output_per_1m_nanos),
                "cache_read_per_1m": usd_json(m.cache_read_per_1m_nanos),
                "cache_write_per_1m": usd_json(m.cache_write_per_1m_nanos),
            }
            for m in gateway.routes.enabled_models()
        ]
    )
