"""Endpoints that need no key: health, the model list and the price list."""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse

from codelace_box.api.common import json_response
from codelace_box.billing.money import nanos_to_usd
from codelace_box.gateway.completions import Gateway

bp = Blueprint("public")


@bp.get("/healthz")
async def healthz(request: Request) -> HTTPResponse:
    """Liveness: the process answers and its database is reachable."""
    request.app.ctx.db.execute_sql("SELECT 1").fetchone()
    return json_response({"status": "ok"})


@bp.get("/v1/models")
async def models(request: Request) -> HTTPResponse:
    """The enabled catalog, in OpenAI's list shape."""
    gateway: Gateway = request.app.ctx.gateway
    data = [
        {"id": m.id, "object": "model", "created": m.created, "owned_by": m.provider.name}
        for m in gateway.routes.enabled_models()
    ]
    return json_response({"object": "list", "data": data})


@bp.get("/api/v1/public/pricing")
async def pricing(request: Request) -> HTTPResponse:
    """USD per 1M input and output tokens of every enabled model."""
    gateway: Gateway = request.app.ctx.gateway
    return json_response(
        [
            {
                "model": m.id,
                "input_per_1m": nanos_to_usd(m.input_per_1m_nanos),
                "output_per_1m": nanos_to_usd(m.output_per_1m_nanos),
            }
            for m in gateway.routes.enabled_models()
        ]
    )
