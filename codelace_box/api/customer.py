"""/api/v1/customer: balance and usage of the signed-in user (payments: api/stripe.py)."""

from __future__ import annotations

from sanic import Request
from sanic.response import HTTPResponse

from codelace_box.accounts.keys import AuthContext
from codelace_box.api.blueprint import Blueprint
from codelace_box.api.common import READ, json_response, limit_arg, require_auth
from codelace_box.api.dbwork import keyed_database_handler
from codelace_box.api.views import balance_view, usage_view
from codelace_box.db.models import User
from codelace_box.db.offload import read_in_db_thread
from codelace_box.reports.usage import usage_summary

bp = Blueprint("customer", url_prefix="/api/v1/customer")
DEFAULT_USAGE_LIMIT = 20
MAX_USAGE_LIMIT = 100


@bp.route("/balance", methods=READ)
@keyed_database_handler
def balance(request: Request, auth: AuthContext) -> HTTPResponse:
    """The caller's credit balance in USD."""
    user = User.get_by_id(auth.user_id)
    return json_response(balance_view(user))


@bp.route("/usage", methods=READ)
async def usage(request: Request) -> HTTPResponse:
    """The caller's totals and most recent requests (newest first)."""
    auth = await require_auth(request)
    summary = await read_in_db_thread(
        usage_summary, auth.user_id, limit_arg(request, DEFAULT_USAGE_LIMIT, MAX_USAGE_LIMIT)
    )
    return json_response(usage_view(summary))
