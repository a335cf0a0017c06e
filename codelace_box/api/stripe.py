"""/api/v1/stripe: Checkout top-ups, card setup and Stripe webhooks; /api/v1/customer/payment;
and the small pages Stripe sends the user back to (/billing/success, /billing/cancel).

Stripe is off (503 naming the keys to set) until stripe.secret_key and stripe.webhook_secret
are configured; the `stripe` library is imported on the first Stripe call, not at start.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re

from sanic import Request, Sanic
from sanic.response import HTTPResponse
from sanic.response import html as html_response

from codelace_box.api.blueprint import Blueprint
from codelace_box.api.common import (
    READ,
    json_body,
    json_response,
    limit_arg,
    optional_json_body,
    require_auth,
)
from codelace_box.api.dbwork import database_handler
from codelace_box.api.portal_security import add_security_headers
from codelace_box.api.reached import reached_url
from codelace_box.api.views import checkout_view, payment_view, webhook_view
from codelace_box.billing.cancelled import cancel_topup
from codelace_box.billing.checkout import (
    CANCEL_PAYMENT_ARG,
    SETUP_CANCEL_QUERY,
    start_setup,
    start_topup,
)
from codelace_box.billing.payments import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    payment_for_session,
)
from codelace_box.billing.payments import payment_history as payments_of_account
from codelace_box.billing.stripe import StripeApi, require_configured
from codelace_box.billing.webhooks import handle_webhook
from codelace_box.config import Config
from codelace_box.errors import InvalidRequest
from codelace_box.money import format_usd

bp = Blueprint("stripe")


def stripe_api(request: Request) -> StripeApi:
    """This worker's Stripe client; 503 when Stripe is not configured."""
    config: Config = request.app.ctx.config
    require_configured(config.stripe)
    api: StripeApi | None = getattr(request.app.ctx, "stripe_api", None)
    if api is None:
        api = StripeApi(config.stripe, box_secret=request.app.ctx.secret_key)
        request.app.ctx.stripe_api = api
    return api


@bp.after_server_stop
async def close_stripe(app: Sanic) -> None:
    """Close the Stripe client's connections when the worker stops."""
    api: StripeApi | None = getattr(app.ctx, "stripe_api", None)
    if api is not None:
        await api.close()


@bp.post("/api/v1/stripe/checkout")
async def checkout(request: Request) -> HTTPResponse:
    """A payment-mode Checkout Session for {"amount_usd"}; the payment is listed pending."""
    api = stripe_api(request)
    auth = await require_auth(request)
    body = json_body(request, exact=True)
    if "amount_usd" not in body:
        raise InvalidRequest("amount_usd is required", code="invalid_amount", param="amount_usd")
    config: Config = request.app.ctx.config
    base = reached_url(request)  # Stripe sends the user back to the address they are at
    url = await start_topup(api, auth.user_id, auth.email, body["amount_usd"], config, base)
    return json_response(checkout_view(url))


@bp.post("/api/v1/stripe/setup")
async def setup(request: Request) -> HTTPResponse:
    """A setup-mode Checkout Session: saving a card earns the trial credit once. It takes no
    field, but a body sent must be a JSON object, as on every route (400 otherwise)."""
    api = stripe_api(request)
    auth = await require_auth(request)
    optional_json_body(request)
    config: Config = request.app.ctx.config
    url = await start_setup(api, auth.user_id, auth.email, config, reached_url(request))
    return json_response(checkout_view(url))


@bp.post("/api/v1/stripe/webhook")
async def webhook(request: Request) -> HTTPResponse:
    """Stripe's events; 400 on a bad signature; 200 only after the effect is on disk."""
    api = stripe_api(request)
    config: Config = request.app.ctx.config
    signature = request.headers.get("stripe-signature")
    outcome = await handle_webhook(api, request.body or b"", signature, config.stripe)
    return json_response(webhook_view(outcome.result))


@bp.route("/api/v1/customer/payment", methods=READ)
async def payment_history(request: Request) -> HTTPResponse:
    """The caller's payments (top-ups, trial, admin credits), newest first, read on the
    database thread."""
    auth = await require_auth(request)
    limit = limit_arg(request, DEFAULT_LIMIT, MAX_LIMIT)
    rows = await payments_of_account(auth.user_id, limit)
    return json_response([payment_view(p) for p in rows])


# What a Checkout Session id is (`cs_test_a1B2...`); anything else is no session of Stripe's and
# is not looked up (a NUL in it was a 500 on PostgreSQL, which takes none in a parameter)
_SESSION_ID = re.compile(r"cs_[A-Za-z0-9_]{1,255}")

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;"
    "color:#1b1f24;background:#fff}a{color:#0b57b0}"
)
# No script at all; the one inline style is allowed by its hash, nothing else loads.
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
RETURN_PAGE_CSP = f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; frame-ancestors 'none'"
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{style}</style></head>
<body><main><h1>{title}</h1><p>{message}</p><p>{back}</p></main></body></html>
"""
# What a top-up that was not paid says, by its status
_NOT_PAID = {
    "failed": "The payment failed; nothing was charged.",
    "expired": "The payment was not made in time and has expired; nothing was charged.",
}
_BACK_TO_PORTAL = '<a href="{base}/billing">Back to your account</a>'


def _page(request: Request, title: str, message: str) -> HTTPResponse:
    """A return page: a link back to the portal when it is served, else a closing word."""
    config: Config = request.app.ctx.config
    base = html.escape(config.server.base_path)  # the path a proxy serves the box under
    closing = "You can close this page."
    back = _BACK_TO_PORTAL.format(base=base) if config.portal.enabled else closing
    body = _PAGE.format(
        title=html.escape(title), message=html.escape(message), back=back, style=_STYLE
    )
    response = html_response(body)
    response.headers["content-security-policy"] = RETURN_PAGE_CSP  # the portal's other headers:
    add_security_headers(response, "no-store")  # no Referer takes the session id elsewhere
    return response


@bp.route("/billing/success", methods=READ)
@database_handler
def success_page(request: Request) -> HTTPResponse:
    """Where Stripe sends the user after paying or saving a card."""
    session_id = request.args.get("session_id", "")
    payment = payment_for_session(session_id) if _SESSION_ID.fullmatch(session_id) else None
    if payment is None:  # not a top-up of ours, or a card setup that earned nothing (yet)
        title = "Thank you"
        message = "Any credit this brings appears on your balance as soon as Stripe confirms it."
    elif payment.kind == "trial":
        title = "Card saved"
        message = (
            f"Thank you. {format_usd(payment.amount_nanos, 2)} trial credit is on your balance."
        )
    elif payment.status == "completed":
        title = "Payment received"
        message = f"Thank you. {format_usd(payment.amount_nanos, 2)} is on your balance."
    elif payment.status == "pending":
        title = "Payment received"
        message = "Thank you. Your balance is credited as soon as Stripe confirms the payment."
    else:
        title = "Payment not completed"
        message = _NOT_PAID.get(payment.status, "The payment was not made; nothing was charged.")
    return _page(request, title, message)


@bp.route("/billing/cancel", methods=READ)
async def cancel_page(request: Request) -> HTTPResponse:
    """Where Stripe sends the user who left the checkout (a card setup's: its own words); a
    top-up's link names its payment, whose session is expired now (billing/cancelled.py)."""
    status = await _cancel_named_topup(request)
    if status in ("complete", "completed"):  # paid meanwhile (another tab): it stays paid
        return _page(
            request,
            "Payment received",
            "This payment was completed: its credit is on your balance, or will be as soon "
            "as Stripe confirms it.",
        )
    if request.query_string == SETUP_CANCEL_QUERY:
        return _page(
            request,
            "Card setup cancelled",
            "No card was saved and nothing was charged. You can start again at any time.",
        )
    return _page(
        request,
        "Payment cancelled",
        "Nothing was charged. You can start again at any time.",
    )


async def _cancel_named_topup(request: Request) -> str | None:
    """The status of the top-up the cancel link names, once expired (None: it names none, or
    Stripe is off: the page still answers)."""
    payment_uuid = request.args.get(CANCEL_PAYMENT_ARG)
    stripe = request.app.ctx.config.stripe
    if not payment_uuid or not (stripe.secret_key and stripe.webhook_secret):
        return None
    return await cancel_topup(stripe_api(request), payment_uuid)
