"""/api/v1/customer: balance and usage of the signed-in user (payments: api/stripe.py)."""

from __future__ import annotations

from typing import Any

from sanic import Blueprint, Request
from sanic.response import HTTPResponse

from codelace_box.api.common import READ, json_response, require_auth
from codelace_box.db.core import iso_z
from codelace_box.db.models import UsageRecord, User
from codelace_box.errors import InvalidRequest
from codelace_box.money import usd_json
from codelace_box.reports.usage import usage_summary

bp = Blueprint("customer", url_prefix="/api/v1/customer")
DEFAULT_USAGE_LIMIT = 20
MAX_USAGE_LIMIT = 100


@bp.route("/balance", methods=READ)
async def balance(request: Request) -> HTTPResponse:
    """The caller's credit balance in USD."""
    auth = require_auth(request)
    user = User.get_by_id(auth.user_id)
    return json_response({"credit_balance_usd": usd_json(user.balance_nanos)})


def _limit(request: Request) -> int:
    raw = request.args.get("limit")
    if raw is None:
        return DEFAULT_USAGE_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_USAGE_LIMIT:
        raise InvalidRequest(
            f"limit must be an integer from 1 to {MAX_USAGE_LIMIT}",
            code="invalid_limit",
            param="limit",
        )
    return limit


def _request_view(row: UsageRecord) -> dict[str, Any]:
    return {
        "id": row.request_id,
        "model": row.model,
        "input_tokens": row.input_tokens,
        "output_tokens": row.output_tokens,
        "cache_read_tokens": row.cache_read_tokens,
        "cache_write_tokens": row.cache_write_tokens,
        "cost_usd": usd_json(row.cost_nanos),
        "status": row.status,
        "stream": bool(row.stream),
        "duration_ms": row.duration_ms,
        "created_at": iso_z(row.created_at),
    }


@bp.route("/usage", methods=READ)
async def usage(request: Request) -> HTTPResponse:
    """The caller's totals and most recent requests (newest first)."""
    auth = require_auth(request)
    summary = usage_summary(auth.user_id, _limit(request))
    return json_response(
        {
            "request_count": summary.request_count,
            "total_input_token": summary.input_tokens,
            "total_output_token": summary.output_tokens,
            "total_cost_usd": usd_json(summary.cost_nanos),
            "recent_requests": [_request_view(row) for row in summary.recent],
        }
    )
