"""Starting a payment: validating a top-up amount, the Checkout Session parameters for a top-up
or a card setup, and the `pending` payment row recorded the moment a top-up session exists.

Amounts are USD with at most two decimals (whole units for zero-decimal currencies and ISK), at
least `stripe.min_topup_usd` and at most `MAX_TOPUP_USD`. The session carries the user in
`client_reference_id` and `metadata`, so the webhook can tie it back to the account; a setup
session also carries `setup_tag`, so only this box's own setup sessions earn its trial, and a
top-up session `topup_tag` over its account and amount.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from typing import Any

from codelace_box.accounts.ratelimit import Limit, give_back, hit
from codelace_box.billing.stripe import (
    CheckoutLink,
    StripeAmountTooSmall,
    StripeApi,
    StripeRateLimited,
    StripeRefusal,
)
from codelace_box.config import Config, StripeConfig
from codelace_box.config.rules import MAX_TOPUP_USD as MAX_TOPUP_USD_CONFIGURABLE
from codelace_box.db.core import durable
from codelace_box.db.ids import new_uuid
from codelace_box.db.models import Payment
from codelace_box.db.offload import run_db_work
from codelace_box.errors import InvalidRequest
from codelace_box.money import usd_to_nanos

log = logging.getLogger("codelace_box.billing.checkout")

MAX_TOPUP_USD = Decimal(MAX_TOPUP_USD_CONFIGURABLE)  # min_topup_usd is at most this
PRODUCT_NAME = "codelace-box credit"
METADATA_USER = "codelace_user_id"
METADATA_KIND = "codelace_kind"
METADATA_BOX = "codelace_box"  # a session's proof that this box created it (setup, top-up)
METADATA_AMOUNT = "codelace_amount"  # a top-up's amount, in the currency's smallest unit
METADATA_CURRENCY = "codelace_currency"  # and its currency
# Stripe's minor units: most currencies have cents; these have none, these have three places.
ZERO_DECIMAL = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga"}
    | {"pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"}
)
THREE_DECIMAL = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})
# Two decimals in Stripe's API, but charged in whole units only (its docs' "special cases":
# ISK amounts must be divisible by 100, else 400 invalid_charge_amount_no_decimal_compatible).
WHOLE_UNITS_ONLY = frozenset({"isk"})
# Stripe's smallest charge in some currencies (its docs' "minimum and maximum charge amounts").
STRIPE_MINIMUM_CHARGE = {
    **dict.fromkeys(("usd", "eur", "cad", "aud", "nzd", "chf", "sgd"), Decimal("0.50")),
    "gbp": Decimal("0.30"),
    "jpy": Decimal(50),
}


@dataclass(frozen=True)
class TopupAmount:
    usd: Decimal
    nanos: int
    minor_units: int  # what Stripe charges, in the currency's smallest unit


def minor_unit_exponent(currency: str) -> int:
    """How many decimals Stripe's smallest unit of this currency has."""
    code = currency.lower()
    if code in ZERO_DECIMAL:
        return 0
    return 3 if code in THREE_DECIMAL else 2


def topup_decimals(currency: str) -> int:
    """How many decimals a top-up amount may have in this currency (at most cents)."""
    return 0 if currency.lower() in WHOLE_UNITS_ONLY else min(2, minor_unit_exponent(currency))


def smallest_topup(config: StripeConfig) -> Decimal:
    """The smallest top-up taken: stripe.min_topup_usd, but never below what Stripe charges
    at least in the currency (an amount Stripe refuses is the user's 400, not Stripe's 502),
    rounded up to the currency's whole units where it is charged in those (10.50 in `jpy`
    could never be paid: 11 is the smallest amount that can)."""
    floor = STRIPE_MINIMUM_CHARGE.get(config.currency.lower(), Decimal("0.01"))
    unit = Decimal(1).scaleb(-topup_decimals(config.currency))
    return max(config.min_topup_usd, floor).quantize(unit, rounding=ROUND_CEILING)


def parse_topup_amount(raw: object, config: StripeConfig) -> TopupAmount:
    """The requested top-up, validated; InvalidRequest (400) saying what is wrong otherwise."""

    def refuse(message: str, code: str = "invalid_amount") -> InvalidRequest:
        return InvalidRequest(message, code=code, param="amount_usd")

    if isinstance(raw, bool) or not isinstance(raw, int | float | Decimal):
        raise refuse("amount_usd must be a number of US dollars, e.g. 25 or 25.50")
    try:
        amount = Decimal(str(raw))
    except InvalidOperation:
        raise refuse("amount_usd must be a number") from None
    if not amount.is_finite():
        raise refuse("amount_usd must be a finite number")
    minimum = smallest_topup(config)
    if amount < minimum:
        shown = f"{minimum.normalize():f}"
        raise refuse(f"the smallest top-up is {shown} USD", code="amount_too_small")
    if amount > MAX_TOPUP_USD:
        raise refuse(f"the largest top-up is {MAX_TOPUP_USD} USD", code="amount_too_large")
    places = topup_decimals(config.currency)
    if amount != amount.quantize(Decimal(1).scaleb(-places)):
        unit = "whole units" if places == 0 else "at most two decimals (cents)"
        raise refuse(f"amount_usd must have {unit}")
    minor = int(amount.scaleb(minor_unit_exponent(config.currency)))
    return TopupAmount(usd=amount, nanos=usd_to_nanos(amount), minor_units=minor)


SETUP_CANCEL_QUERY = "kind=setup"  # a card setup's cancel page speaks of a card, not a payment
CANCEL_PAYMENT_ARG = "payment"  # a top-up's cancel link names its payment (billing/cancelled.py)
# A top-up session lives an hour (Stripe's default: 24 hours, its payment `pending` all that
# time; the cancel page expires it at once): Stripe takes 30 minutes at least, measured by its
# own clock when the call arrives, so the rest is room for a box's clock running behind Stripe's
# (every top-up would be a 400) and for the library's retries, which send the same value later.
TOPUP_SESSION_SEC = 60 * 60


def return_urls(base_url: str, cancel_query: str = "") -> dict[str, str]:
    """Where Stripe sends the user back to: the box's own small pages (the cancel page with
    `cancel_query`, what it says what was left)."""
    base = base_url.rstrip("/")
    return {
        "success_url": f"{base}/billing/success?session_id={{CHECKOUT_SESSION_ID}}",
        "cancel_url": f"{base}/billing/cancel" + (f"?{cancel_query}" if cancel_query else ""),
    }


def topup_session_params(
    user_id: int,
    email: str,
    amount: TopupAmount,
    config: Config,
    box_secret: str = "",
    base_url: str = "",
    payment_uuid: str = "",
) -> dict[str, object]:
    """The Checkout Session (payment mode) for a top-up of `amount`; its metadata carries the
    account, the amount and a `topup_tag` over them, so a paid session whose pending row
    this box lost (a database restored from an older backup) is still credited, once, to
    its account (webhooks.py). Stripe sends the user back under `base_url` (the address
    they reached the box at: api/reached.py), or the box's own `server.base_url`; its cancel
    link names the payment (`payment_uuid`), whose session the cancel page expires. The
    session expires by itself after TOPUP_SESSION_SEC."""
    currency = config.stripe.currency.lower()
    metadata = {
        METADATA_USER: str(user_id),
        METADATA_KIND: "topup",
        METADATA_AMOUNT: str(amount.minor_units),
        METADATA_CURRENCY: currency,
        METADATA_BOX: topup_tag(box_secret, user_id, amount.minor_units, currency),
    }
    return {
        "mode": "payment",
        "line_items": [
            {
                "price_data": {
                    "currency": currency,
                    "unit_amount": amount.minor_units,
                    "product_data": {"name": f"{PRODUCT_NAME} ({amount.usd.normalize():f} USD)"},
                },
                "quantity": 1,
            }
        ],
        "client_reference_id": str(user_id),
        "customer_email": email,
        "metadata": metadata,
        "expires_at": int(time.time()) + TOPUP_SESSION_SEC,
        **return_urls(
            base_url or config.server.base_url,
            f"{CANCEL_PAYMENT_ARG}={payment_uuid}" if payment_uuid else "",
        ),
    }


def topup_tag(box_secret: str, user_id: int, minor_units: int, currency: str) -> str:
    """What this box writes into a top-up session's metadata: a MAC under the box's own
    secret over the account, the amount and its currency (none of them can be changed)."""
    return _box_mac(
        box_secret,
        f"codelace-box stripe top-up of {minor_units} {currency.lower()} for user {user_id}",
    )


def setup_tag(box_secret: str, user_id: int) -> str:
    """What this box writes into its setup sessions' metadata for `user_id`: a MAC under the
    box's own secret, so a setup session another box on the same Stripe account created for
    its own user of the same id earns no trial here."""
    return _box_mac(box_secret, f"codelace-box stripe setup session for user {user_id}")


def _box_mac(box_secret: str, message: str) -> str:
    """A session metadata tag: the message's HMAC-SHA256 under the box's secret, 32 hex digits."""
    return hmac.new(box_secret.encode(), message.encode(), hashlib.sha256).hexdigest()[:32]


def setup_session_params(
    user_id: int, email: str, config: Config, box_secret: str, base_url: str = ""
) -> dict[str, object]:
    """The Checkout Session (setup mode) that saves a card; its completion may earn the trial.
    Stripe sends the user back under `base_url`, as for a top-up."""
    metadata = {
        METADATA_USER: str(user_id),
        METADATA_KIND: "setup",
        METADATA_BOX: setup_tag(box_secret, user_id),
    }
    return {
        "mode": "setup",
        "currency": config.stripe.currency.lower(),
        "allowed_payment_method_types": ["card"],
        "client_reference_id": str(user_id),
        "customer_email": email,
        "metadata": metadata,
        **return_urls(base_url or config.server.base_url, SETUP_CANCEL_QUERY),
    }


CHECKOUTS_PER_HOUR = 20  # Checkout Sessions (top-ups and card setups) an account may start


def count_checkout(user_id: int) -> list[int]:
    """One more Checkout Session of this account, or 429 `rate_limit_error`: each is a call to
    Stripe on the operator's account (whose API rate limit every account shares) and a top-up
    a pending payment row, so a script holding any key of the account cannot start them
    without bound. A person paying needs a few. The counted events, for `give_back`."""
    limit = Limit(f"checkout:{user_id}", CHECKOUTS_PER_HOUR, 3600, "checkout sessions")
    return hit([limit])


async def create_counted_session(
    api: StripeApi, user_id: int, params: dict[str, Any]
) -> CheckoutLink:
    """Create a Checkout Session counted against the account's hourly allowance; a session
    Stripe failed to make (5xx, timeout, refused connection, a refused key) is
    given back, so a user retrying through a Stripe outage is not locked out once Stripe is
    back. (Counted first, then given back: concurrent requests can never start more than the
    allowance.) A refusal of the request itself (`StripeRefusal`) keeps its count: it would
    fail the same way again, and must not let an account call Stripe without bound (nor does
    `StripeAmountTooSmall`, a 400); so does
    Stripe's rate limit (`StripeRateLimited`), the shared limit the allowance protects.

    It runs to its end even when the requester leaves (the server then cancels the request,
    typically while a silent Stripe is being waited for): its count is settled either way."""
    call = asyncio.ensure_future(_count_and_create(api, user_id, params))
    _running.add(call)
    call.add_done_callback(_settled)
    return await asyncio.shield(call)


_running: set[asyncio.Future[CheckoutLink]] = set()  # calls whose requester may have left


def _settled(call: asyncio.Future[CheckoutLink]) -> None:
    """Forget a finished call; its error is the requester's, or nobody's if they left."""
    _running.discard(call)
    if not call.cancelled():
        call.exception()  # retrieved: a left requester's failure is not "never retrieved"


async def _count_and_create(api: StripeApi, user_id: int, params: dict[str, Any]) -> CheckoutLink:
    """Count, create; give the count back if Stripe failed to make the session."""
    counted = await run_db_work(count_checkout, user_id)
    try:
        return await api.create_checkout_session(params)
    except (StripeRefusal, StripeAmountTooSmall, StripeRateLimited):
        raise
    except Exception:
        try:
            await run_db_work(give_back, counted)
        except Exception:  # the Stripe error is the one to answer; this one is logged
            log.exception("could not give back a checkout count of account %s", user_id)
        raise


def record_pending_topup(
    user_id: int, session_id: str, nanos: int, currency: str, payment_uuid: str
) -> Payment:
    """The `pending` payment row of a top-up session just created, committed with an fsync
    before its URL is shown: a paid session whose row a crash lost is credited to nobody."""
    with durable():
        return Payment.create(
            uuid=payment_uuid,
            user=user_id,
            amount_nanos=nanos,
            kind="topup",
            status="pending",
            stripe_session_id=session_id,
            currency=currency.lower(),
        )


async def start_topup(
    api: StripeApi, user_id: int, email: str, raw_amount: object, config: Config, base_url: str
) -> str:
    """Validate, create the payment-mode session, record it pending (off the event loop on
    PostgreSQL); the checkout URL. Stripe sends the user back under `base_url`."""
    amount = parse_topup_amount(raw_amount, config.stripe)
    payment_uuid = new_uuid()  # its cancel link names it before the row is written
    params = topup_session_params(
        user_id, email, amount, config, api.box_secret, base_url, payment_uuid
    )
    link = await create_counted_session(api, user_id, params)
    session, currency = link.session_id, config.stripe.currency
    await run_db_work(record_pending_topup, user_id, session, amount.nanos, currency, payment_uuid)
    return link.url


async def start_setup(
    api: StripeApi, user_id: int, email: str, config: Config, base_url: str
) -> str:
    """Create the setup-mode session; the checkout URL. Stripe sends the user back under
    `base_url`."""
    params = setup_session_params(user_id, email, config, api.box_secret, base_url)
    link = await create_counted_session(api, user_id, params)
    return link.url
