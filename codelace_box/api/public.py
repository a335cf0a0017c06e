"""Endpoints that need no key: health."""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse

from codelace_box.api.common import json_response

bp = Blueprint("public")


@bp.get("/healthz")
async def healthz(request: Request) -> HTTPResponse:
    """Liveness: the process answers and its database is reachable."""
    request.app.ctx.db.execute_sql("SELECT 1").fetchone()
    return json_response({"status": "ok"})
