"""Endpoints that need no key: health, the model list and the price list."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from sanic import Request
from sanic.response import HTTPResponse

from codelace_box.api.blueprint import Blueprint
from codelace_box.api.common import READ, json_response, limit_of
from codelace_box.api.views import (
    anthropic_model_list_view,
    health_view,
    model_list_view,
    model_view,
    pricing_view,
)
from codelace_box.db.lookups import ping_many, run_lookups
from codelace_box.db.text import composed
from codelace_box.errors import NotFound, ServiceUnavailable
from codelace_box.gateway.pipeline import Gateway
from codelace_box.gateway.routing import ModelRoute

MAX_PAGE = 1000  # Anthropic's largest `limit`; the default here (all fit in practice)

bp = Blueprint("public")


@bp.route("/healthz", methods=READ)
async def healthz(request: Request) -> HTTPResponse:
    """Liveness: the process answers and its database is reachable (on PostgreSQL asked on
    the lookup thread: a server that stops answering never holds the event loop); with one
    process, 503 while it still starts (its stop handling is not in place yet: stopping.py),
    for the few milliseconds it already answers before that."""
    ctx = request.app.ctx
    if getattr(ctx, "starting", False) and ctx.single_process:
        raise ServiceUnavailable("the server is still starting; retry shortly", code="starting")
    await run_lookups(ping_many, None)
    return json_response(health_view())


@bp.route("/v1/models", methods=READ)
async def models(request: Request) -> HTTPResponse:
    """The models that can be served (enabled, their provider enabled), in OpenAI's list shape
    (Anthropic's, with aliases, when the request has an `anthropic-version` header)."""
    gateway: Gateway = request.app.ctx.gateway
    if request.headers.get("anthropic-version"):
        named = [(m.id, m) for m in gateway.routes.servable_models()]
        named += sorted(gateway.routes.servable_aliases().items())
        page, more = anthropic_page(named, request.args)
        return json_response(anthropic_model_list_view(page, more))
    return json_response(model_list_view(gateway.routes.servable_models()))


def anthropic_page(
    named: list[tuple[str, ModelRoute]], args: Any
) -> tuple[list[tuple[str, ModelRoute]], bool]:
    """Anthropic's cursor paging: `limit` entries after `after_id`, or the `limit` just before
    `before_id`; and whether more lie beyond in that direction."""
    limit = limit_of(args, MAX_PAGE, MAX_PAGE)
    ids = [name for name, _ in named]
    after, before = args.get("after_id"), args.get("before_id")
    if before is not None:
        end = ids.index(before) if before in ids else 0
        start = max(end - limit, 0)
        return named[start:end], start > 0
    start = ids.index(after) + 1 if after in ids else (len(ids) if after else 0)
    return named[start : start + limit], start + limit < len(named)


@bp.route("/v1/models/<model_id:path>", methods=READ)
async def model(request: Request, model_id: str) -> HTTPResponse:
    """One servable model (ids contain a slash: /v1/models/openai/gpt-5.4), or an alias: the
    model it routes to under the name asked for, in either shape (as OpenRouter and LiteLLM
    answer an alias; /v1/models in OpenAI's shape lists only the catalog)."""
    gateway: Gateway = request.app.ctx.gateway
    model_id = unquote(model_id)  # SDKs send the slash of an id as %2F
    if not model_id:
        raise NotFound("no model id given: GET /v1/models lists the models", code="model_not_found")
    wanted = composed(model_id)  # the id in either Unicode form
    found = next((m for m in gateway.routes.servable_models() if composed(m.id) == wanted), None)
    found = found or gateway.routes.servable_aliases().get(model_id)
    if found is None:
        raise NotFound(f"the model {model_id} does not exist", code="model_not_found")
    if request.headers.get("anthropic-version"):  # Anthropic's shape; an alias is a model
        return json_response(anthropic_model_list_view([(model_id, found)])["data"][0])
    return json_response({**model_view(found), "id": model_id})


@bp.route("/api/v1/public/pricing", methods=READ)
async def pricing(request: Request) -> HTTPResponse:
    """USD per 1M input and output tokens of every model that can be served (enabled, its
    provider enabled), as /v1/models lists them."""
    gateway: Gateway = request.app.ctx.gateway
    return json_response(pricing_view(gateway.routes.servable_models()))
