"""/portal/api: what the portal's pages show and do, for the signed-in browser (cookie session):
overview, keys (list, create, rename, limits, revoke), usage, payments, top-up and card setup.

Thin handlers over accounts/, billing/ and reports/, answering in the shapes of api/views.py;
every rule (amounts, names, the trial) is the server's, the page only shows the answers. Their
database work runs off the event loop on PostgreSQL (api/dbwork.py), the reads that grow with
history on the database thread on both engines.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from sanic import Request
from sanic.response import HTTPResponse

from codelace_box.accounts.keys import list_keys, revoke_key, update_key
from codelace_box.accounts.users import get_user_by_id, shown_email
from codelace_box.api.accounts import create_key_from, key_changes
from codelace_box.api.blueprint import Blueprint
from codelace_box.api.common import (
    READ,
    json_body,
    json_response,
    only_fields,
    optional_json_body,
)
from codelace_box.api.dbwork import database_handler
from codelace_box.api.portal_security import (
    changing_session,
    current_session,
    portal_headers,
)
from codelace_box.api.reached import reached_url
from codelace_box.api.stripe import stripe_api
from codelace_box.api.views import (
    checkout_view,
    key_view,
    new_key_view,
    overview_view,
    payment_view,
    spend_view,
    usage_view,
)
from codelace_box.billing.checkout import MAX_TOPUP_USD, smallest_topup, start_setup, start_topup
from codelace_box.billing.payments import payment_history
from codelace_box.config import Config
from codelace_box.db.models import User
from codelace_box.db.offload import read_in_db_thread, run_db_work
from codelace_box.errors import InvalidRequest
from codelace_box.money import typed_usd, ungrouped
from codelace_box.reports.usage import spend_history, usage_page

bp = Blueprint("portal_data", url_prefix="/portal/api")
bp.on_response(portal_headers)
RECENT_REQUESTS = 20
SHOWN_PAYMENTS = 50  # static/billing.js says so past as many (its SHOWN_PAYMENTS)
MAX_AMOUNT_TEXT = 32
MAX_NUMBER_TEXT = 1000  # longer is no amount anyone typed
PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")  # ASCII digits, one point


def _stripe_enabled(config: Config) -> bool:
    return bool(config.stripe.secret_key and config.stripe.webhook_secret)


@bp.route("/overview", methods=READ)
async def overview(request: Request) -> HTTPResponse:
    """Balance, this month's spend, and what the billing page needs to know."""
    user = await run_db_work(_signed_in_user, request)
    history = await read_in_db_thread(spend_history, user.id)
    config: Config = request.app.ctx.config
    stripe = config.stripe
    return json_response(
        {
            "email": user.email,
            "display_email": shown_email(user.email),  # as the page shows it (IDN in Unicode)
            **overview_view(user, history),
            "base_url": reached_url(request),  # the connect snippets' base
            "stripe_enabled": _stripe_enabled(config),
            "min_topup_usd": float(smallest_topup(stripe)),
            "max_topup_usd": float(MAX_TOPUP_USD),
            "trial_available": _trial_open(user, config),
            "trial_credit_usd": float(stripe.trial_credit_usd),
        }
    )


def _signed_in_user(request: Request) -> User:
    return get_user_by_id(current_session(request).user_id)


def _trial_open(user: User, config: Config) -> bool:
    """Whether saving a card would still earn this account the trial credit."""
    trial = _stripe_enabled(config) and config.stripe.trial_credit_usd > 0
    return trial and user.trial_granted_at is None


def _check_trial_open(request: Request, user_id: int) -> None:
    """400 `trial_unavailable` once saving a card can no longer earn the trial."""
    if not _trial_open(get_user_by_id(user_id), request.app.ctx.config):
        raise InvalidRequest(
            "this account has had its trial credit already (or the box offers none any more): "
            "saving a card would earn nothing; reload the page",
            code="trial_unavailable",
        )


@bp.route("/keys", methods=READ)
@database_handler
def keys(request: Request) -> HTTPResponse:
    """The active keys (never the full keys), with their limits when the server has them."""
    session = current_session(request)
    return json_response([key_view(k) for k in list_keys(session.user_id)])


@bp.post("/keys")
@database_handler
def keys_create(request: Request) -> HTTPResponse:
    """Mint a key; the full key is in this answer and nowhere else."""
    session = changing_session(request)
    body = typed_cap(json_body(request, exact=True))
    return json_response(new_key_view(create_key_from(session.user_id, body)))


@bp.patch("/keys/<key_id:str>")
@database_handler
def keys_update(request: Request, key_id: str) -> HTTPResponse:
    """Change one of the caller's keys: its name and limits, as PATCH /api/v1/auth/key does
    (an absent field unchanged, no body at all too, null clearing a limit, a bad one a 400 and
    nothing changed)."""
    session = changing_session(request)
    changes = key_changes(typed_cap(optional_json_body(request, exact=True)))
    return json_response(key_view(update_key(key_id, changes, user_id=session.user_id)))


def typed_cap(body: dict[str, Any]) -> dict[str, Any]:
    """A key's cap as typed in the page ("$1,000") read as a top-up's amount is."""
    cap = body.get("limit_usd")
    return {**body, "limit_usd": typed_usd(cap)} if isinstance(cap, str) else body


@bp.delete("/keys/<key_id:str>")
@database_handler
def keys_revoke(request: Request, key_id: str) -> HTTPResponse:
    """Revoke one of the caller's keys; it fails from the next request on."""
    session = changing_session(request)
    revoke_key(key_id, user_id=session.user_id)
    return HTTPResponse(status=204)


@bp.route("/usage", methods=READ)
async def usage(request: Request) -> HTTPResponse:
    """Totals, recent requests, and the spend of each of the last 30 days (read at one
    instant: they agree)."""
    session = await run_db_work(current_session, request)
    summary, history = await read_in_db_thread(usage_page, session.user_id, RECENT_REQUESTS)
    return json_response(usage_view(summary) | spend_view(history))


@bp.route("/payments", methods=READ)
async def payments(request: Request) -> HTTPResponse:
    """The newest payments with their statuses (read on the database thread)."""
    session = await run_db_work(current_session, request)
    rows = await payment_history(session.user_id, SHOWN_PAYMENTS)
    return json_response([payment_view(p) for p in rows])


def amount_from_form(raw: object) -> object:
    """The amount as typed in the page (text) as a number billing/ can judge; anything that is
    not a number is passed on as it is, so billing/ words the refusal. Plain digits are a number
    at any length up to MAX_NUMBER_TEXT (33 nines are too large, not 'not a number'), with
    thousands commas or without; other text only when short."""
    if isinstance(raw, str):
        text = raw.strip().removeprefix("$").strip()
        if not text:
            raise InvalidRequest(
                "enter an amount in USD", code="invalid_amount", param="amount_usd"
            )
        if len(text) > MAX_NUMBER_TEXT:  # no amount: not read (10 MB of digits take a while)
            raise InvalidRequest(
                f"amount_usd is too long for an amount (the largest top-up is {MAX_TOPUP_USD} USD)",
                code="invalid_amount",
                param="amount_usd",
            )
        text = ungrouped(text)  # "1,250.50", as the page writes amounts
        if PLAIN_NUMBER.fullmatch(text):
            return Decimal(text)
        # (Decimal reads "1_0" as 10 and other scripts' digits as ours: passed on as text)
        if len(text) <= MAX_AMOUNT_TEXT and text.isascii() and "_" not in text:
            try:
                return Decimal(text)
            except InvalidOperation:
                return text
    return raw


@bp.post("/topup")
async def topup(request: Request) -> HTTPResponse:
    """A Checkout Session for a top-up of {"amount_usd"}; the page follows its URL."""
    session = await run_db_work(changing_session, request)
    api = stripe_api(request)
    body = only_fields(json_body(request, exact=True), ("amount_usd",), "a top-up")
    amount = amount_from_form(body.get("amount_usd"))
    config: Config = request.app.ctx.config
    base = reached_url(request)  # Stripe sends the user back to the address they are at
    url = await start_topup(api, session.user_id, session.email, amount, config, base)
    return json_response(checkout_view(url))


@bp.post("/setup")
async def setup(request: Request) -> HTTPResponse:
    """A setup-mode Checkout Session: saving a card earns the trial credit once. It takes no
    field, but a body sent must be a JSON object (400 otherwise), as on every route. A page
    drawn while the trial was open, given since (a card saved in another tab), gets a 400
    `trial_unavailable`: the card it would send the person to save could earn nothing."""
    session = await run_db_work(changing_session, request)
    api = stripe_api(request)
    only_fields(optional_json_body(request), (), "a card setup")
    await run_db_work(_check_trial_open, request, session.user_id)
    config: Config = request.app.ctx.config
    url = await start_setup(api, session.user_id, session.email, config, reached_url(request))
    return json_response(checkout_view(url))
