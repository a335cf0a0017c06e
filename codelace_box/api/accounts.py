"""/api/v1/auth: sign-in codes, profile and API keys (thin handlers over accounts/; their
database work off the event loop on PostgreSQL: api/dbwork.py). Every write to keys or the
profile is refused (403 `key_management_not_allowed`) for a key with `can_manage_keys` false;
reading them is not."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sanic import Request
from sanic.response import HTTPResponse

from codelace_box.accounts.key_room import check_room_for_a_key
from codelace_box.accounts.keys import (
    AuthContext,
    NewKey,
    create_key,
    list_keys,
    require_key_management,
    revoke_key,
    update_key,
)
from codelace_box.accounts.limits import KEY_LIMIT_FIELDS
from codelace_box.accounts.signin import complete_sign_in, request_sign_in
from codelace_box.accounts.users import get_user_by_id, set_display_name, shown_email
from codelace_box.api.blueprint import Blueprint
from codelace_box.api.common import (
    READ,
    client_address,
    json_body,
    json_response,
    only_fields,
    optional_json_body,
)
from codelace_box.api.dbwork import database_handler, keyed_database_handler
from codelace_box.api.portal_security import refuse_other_sites_pages
from codelace_box.api.views import (
    code_sent_view,
    key_view,
    new_key_view,
    profile_view,
    signed_in_view,
)
from codelace_box.errors import InvalidRequest

bp = Blueprint("accounts", url_prefix="/api/v1/auth")


async def send_sign_in_code(request: Request, for_page: bool = False) -> HTTPResponse:
    """Mail a fresh sign-in code to the body's `email`, counted against the sign-in rate limits;
    the same answer whether or not the account exists. The API's and the portal's code request
    both answer with this; the portal's page (`for_page`) also gets the address as it shows it
    (`display_email`: an IDN domain in Unicode), `email` staying the one to send back."""
    body = json_body(request)
    if for_page:
        only_fields(body, ("email",), "a sign-in code request")
    ctx = request.app.ctx
    sent = await request_sign_in(
        body.get("email"),
        client_address(request),
        mailer=ctx.mailer,
        secret_key=ctx.secret_key,
        auth=ctx.config.auth,
    )
    view = code_sent_view(sent)
    if for_page:
        view["display_email"] = shown_email(sent.email)
    return json_response(view)


@bp.post("/otp/request")
async def otp_request(request: Request) -> HTTPResponse:
    """Mail a fresh sign-in code; the same answer whether or not the account exists. Not for
    another site's page (no CORS here, so none could read the answer): a form or a no-cors
    fetch of any site the browser visits would make it ask for codes to any address."""
    refuse_other_sites_pages(request)
    return await send_sign_in_code(request)


@bp.post("/otp/verify")
@database_handler
def otp_verify(request: Request) -> HTTPResponse:
    """Trade a code for an API key, creating the account on first sign-in (not for another
    site's page: its guesses at someone's code would count from each visitor's address)."""
    refuse_other_sites_pages(request)
    body = json_body(request)
    ctx = request.app.ctx
    signed_in = complete_sign_in(
        body.get("email"),
        body.get("code"),
        client_address(request),
        secret_key=ctx.secret_key,
        auth=ctx.config.auth,
    )
    return json_response(signed_in_view(signed_in))


@bp.route("/me", methods=READ)
@keyed_database_handler
def me(request: Request, auth: AuthContext) -> HTTPResponse:
    """The signed-in account."""
    return json_response(profile_view(get_user_by_id(auth.user_id)))


@bp.patch("/me")
@keyed_database_handler
def update_me(request: Request, auth: AuthContext) -> HTTPResponse:
    """Change the display name (not with a key that may not manage the account): as every
    PATCH, an absent field is unchanged and null clears it; an unknown field is a 400."""
    require_key_management(auth)
    body = optional_json_body(request)
    unknown = sorted(set(body) - {"display_name"})
    if unknown:
        raise InvalidRequest(f"{unknown[0]}: not a field of the profile", param=unknown[0])
    if "display_name" not in body:
        return json_response(profile_view(get_user_by_id(auth.user_id)))
    name = body["display_name"]
    return json_response(profile_view(set_display_name(auth.user_id, "" if name is None else name)))


@bp.route("/key", methods=READ)
@keyed_database_handler
def keys_list(request: Request, auth: AuthContext) -> HTTPResponse:
    """The caller's active keys (never the full keys)."""
    return json_response([key_view(k) for k in list_keys(auth.user_id)])


@bp.post("/key")
@keyed_database_handler
def keys_create(request: Request, auth: AuthContext) -> HTTPResponse:
    """Mint a key; the full key is in this answer and nowhere else, ever."""
    require_key_management(auth)
    body = optional_json_body(request, exact=True)  # the name is optional, so is the body
    return json_response(new_key_view(create_key_from(auth.user_id, body)))


PATCHABLE = ("name", *KEY_LIMIT_FIELDS)


def create_key_from(user_id: int, body: Mapping[str, Any]) -> NewKey:
    """A key made from a request body: its name and limit fields (the portal's too). A field a
    key does not have is a 400, so a misspelt limit never makes a key without it."""
    key_changes(body)
    check_room_for_a_key(user_id)
    name = body.get("name")
    limits = {field: body[field] for field in KEY_LIMIT_FIELDS if field in body}
    return create_key(user_id, "" if name is None else name, limits, capped=True)


def key_changes(body: Mapping[str, Any]) -> Mapping[str, Any]:
    """The fields of a key a PATCH body changes; 400 for a field a key does not have."""
    unknown = sorted(set(body) - set(PATCHABLE))
    if unknown:
        raise InvalidRequest(
            f"{unknown[0]}: not a field of a key (known: {', '.join(PATCHABLE)})",
            param=unknown[0],
        )
    return body


@bp.patch("/key/<key_id>")
@keyed_database_handler
def keys_update(request: Request, auth: AuthContext, key_id: str) -> HTTPResponse:
    """Change one of the caller's keys: its name and limits (an absent field is unchanged,
    null clears a limit). A bad field is a 400 naming it, and nothing changes. A key may not
    change its own can_manage_keys."""
    require_key_management(auth)
    changes = key_changes(optional_json_body(request, exact=True))
    key = update_key(key_id, changes, user_id=auth.user_id, acting_key_id=auth.key_id)
    return json_response(key_view(key))


@bp.delete("/key/<key_id>")
@keyed_database_handler
def keys_delete(request: Request, auth: AuthContext, key_id: str) -> HTTPResponse:
    """Revoke one of the caller's keys, named by its UUID; it fails from the very next request
    on. Any other key_id (an old integer id, garbage) is a 404."""
    require_key_management(auth)
    revoke_key(key_id, user_id=auth.user_id)
    return HTTPResponse(status=204)
