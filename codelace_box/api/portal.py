"""The portal: its pages and static assets, and its own sign-in (email -> code -> a cookie
session, never an API key), session and sign-out endpoints. Data endpoints: portal_data.py.

Every page path serves the same HTML shell; the JS modules draw the page the path names. The
portal is a client like the CLI: these handlers call the same accounts/ functions (their
database work off the event loop on PostgreSQL: api/dbwork.py).
"""

from __future__ import annotations

from sanic import Request
from sanic.response import HTTPResponse

from codelace_box.accounts.sessions import end_session, find_session, start_session
from codelace_box.accounts.signin import verify_code
from codelace_box.api.accounts import send_sign_in_code
from codelace_box.api.blueprint import Blueprint
from codelace_box.api.common import (
    READ,
    client_address,
    json_body,
    json_response,
    only_fields,
    optional_json_body,
)
from codelace_box.api.dbwork import database_handler
from codelace_box.api.portal_security import (
    PAGE_PATHS,
    changing_session,
    check_cookie_kept,
    check_origin,
    clear_session_cookie,
    portal_headers,
    session_token,
    set_session_cookie,
)
from codelace_box.billing.stripe import STRIPE_LONGEST_SEC
from codelace_box.config import Config
from codelace_box.errors import NotFound
from codelace_box.portal import load_assets

bp = Blueprint("portal")
CALL_MARGIN_SEC = 20  # the page's wait on an ordinary call (api.js TIMEOUT_MS)
bp.on_response(portal_headers)
PAGES = tuple(sorted(PAGE_PATHS))


async def page(request: Request) -> HTTPResponse:
    """The HTML shell (the same for every page path; the script draws the page)."""
    config: Config = request.app.ctx.config
    shell = load_assets().shell_at(config.server.base_path)
    return HTTPResponse(shell, content_type="text/html; charset=utf-8")


for _path in PAGES:
    bp.add_route(page, _path, methods=READ, name="page" + _path.replace("/", "_"))


@bp.route("/portal/assets/<digest:str>/<name:path>", methods=READ)
async def asset(request: Request, digest: str, name: str) -> HTTPResponse:
    """A static file of the current version (404 for another version or an unknown name)."""
    assets = load_assets()
    content = assets.files.get(name)
    if digest != assets.digest or content is None:
        raise NotFound("no such portal asset", code="not_found")
    return HTTPResponse(content, content_type=assets.content_type(name))


def page_waits(config: Config) -> dict[str, int]:
    """How long the page waits on a call that waits on an outside service, in seconds: the
    box's own bound on it (email.smtp_timeout_sec; its Stripe client's timeout and retries)
    and CALL_MARGIN_SEC, so the box's answer (sent, or why not) comes before the page gives up."""
    return {
        "mail": config.email.smtp_timeout_sec + CALL_MARGIN_SEC,
        "stripe": STRIPE_LONGEST_SEC + CALL_MARGIN_SEC,
    }


def session_view(request: Request) -> dict[str, object]:
    """GET /portal/api/session: whether the browser is signed in, and as whom; and how long
    its page waits on the calls that wait on the mail server or Stripe (`wait_sec`)."""
    waits = {"wait_sec": page_waits(request.app.ctx.config)}
    found = find_session(session_token(request), request.app.ctx.secret_key)
    if found is None:
        return {"signed_in": False, **waits}
    return {"signed_in": True, "email": found.email, "csrf_token": found.csrf_token, **waits}


@bp.route("/portal/api/session", methods=READ)
@database_handler
def session(request: Request) -> HTTPResponse:
    """Always 200, so a signed-out page load logs no failed request."""
    return json_response(session_view(request))


@bp.post("/portal/api/signin/code")
async def signin_code(request: Request) -> HTTPResponse:
    """Mail a sign-in code (the same machinery and limits as /api/v1/auth/otp/request)."""
    check_origin(request)
    check_cookie_kept(request)  # no code mailed for a sign-in whose cookie would be dropped
    return await send_sign_in_code(request, for_page=True)


@bp.post("/portal/api/signin/verify")
@database_handler
def signin_verify(request: Request) -> HTTPResponse:
    """Trade a code for a session cookie; no API key is minted."""
    check_origin(request)
    check_cookie_kept(request)  # before the code is spent
    body = only_fields(json_body(request), ("email", "code"), "a sign-in")
    ctx = request.app.ctx
    config: Config = ctx.config
    user, _ = verify_code(
        body.get("email"),
        body.get("code"),
        client_address(request),
        secret_key=ctx.secret_key,
        auth=config.auth,
    )
    end_session(session_token(request))  # a new sign-in replaces the browser's old session
    new = start_session(user, ctx.secret_key, config.portal.session_hours * 3600)
    view = {"signed_in": True, "email": user.email, "csrf_token": new.session.csrf_token}
    response = json_response(view)
    set_session_cookie(response, new, request)
    return response


@bp.post("/portal/api/signout")
@database_handler
def signout(request: Request) -> HTTPResponse:
    """End the session on the server and drop the cookie."""
    changing_session(request)
    only_fields(optional_json_body(request), (), "a sign-out")
    end_session(session_token(request))
    response = json_response({"signed_in": False})
    clear_session_cookie(response, request)
    return response
