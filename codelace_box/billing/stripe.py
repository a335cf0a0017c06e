"""The box's door to Stripe: the lazily imported official client, and webhook verification.

`stripe` costs a quarter second to import, so nothing here imports it until a Stripe endpoint
is first used. `StripeApi` wraps one `stripe.StripeClient` per server process (its async
methods over the library's httpx client, so the event loop never blocks) and turns the
library's errors into ours without letting a key reach a message. `verify_event` checks a
webhook's `Stripe-Signature` on the raw body with the library's own verifier.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

from codelace_box.billing.webhook_warnings import warn_refused
from codelace_box.config import StripeConfig
from codelace_box.errors import (
    CodelaceError,
    InvalidRequest,
    ServiceUnavailable,
    UpstreamBusy,
    UpstreamError,
    UpstreamTimeout,
)
from codelace_box.jsonwire import NOT_JSON, has_string

log = logging.getLogger("codelace_box.billing.stripe")

WEBHOOK_TOLERANCE_SEC = 300
STRIPE_TIMEOUT_SEC = 15.0  # per attempt; with the retries a silent Stripe costs the user ~47 s
STRIPE_RETRIES = 2
STRIPE_RETRY_WAIT_SEC = 5  # the longest the client waits between tries (stripe's MAX_DELAY)
STRIPE_LONGEST_SEC = int(STRIPE_TIMEOUT_SEC) * (STRIPE_RETRIES + 1) + (
    STRIPE_RETRY_WAIT_SEC * STRIPE_RETRIES
)  # a call to Stripe, its retries included, at the most (the portal's page waits longer)
MAX_MESSAGE_CHARS = 300  # of Stripe's own words in our errors and logs
MAX_ID_CHARS = 255  # Stripe's object ids are at most this long
_REFERENCES = ("payment_intent", "setup_intent", "charge")  # ids an event's object names
_SECRET_RE = re.compile(r"\b(sk|rk|pk)_(test|live)_[A-Za-z0-9*]+|\bwhsec_[A-Za-z0-9*]+")
_ENV_NAMES = {
    "secret_key": "CODELACE_STRIPE_SECRET_KEY",
    "webhook_secret": "CODELACE_STRIPE_WEBHOOK_SECRET",
}


def redact(text: str) -> str:
    """`text` with anything shaped like a Stripe key or signing secret masked."""
    return _SECRET_RE.sub("[redacted]", text)


def require_configured(config: StripeConfig) -> None:
    """503 naming what to set unless both the secret key and the webhook secret are set."""
    missing = [name for name in ("secret_key", "webhook_secret") if not getattr(config, name)]
    if not missing:
        return
    keys = " and ".join(f"stripe.{name}" for name in missing)
    env = " / ".join(_ENV_NAMES[name] for name in missing)
    raise ServiceUnavailable(
        f"Stripe is not configured on this box: set {keys} in codelace.toml (or {env})",
        code="stripe_not_configured",
    )


class StripeRefusal(UpstreamError):
    """Stripe answered and refused the request for what it asked (a 4xx about the request,
    not the key nor a rate limit): asked again the same way it fails the same way."""


class StripeObjectMissing(StripeRefusal):
    """Stripe has no object of the id asked for (its 404 `resource_missing`)."""


class StripeRateLimited(UpstreamBusy):
    """Stripe's 429: the operator's account-wide API rate limit, which every account shares
    (a failure, but one more call only makes it last): a 503 with Stripe's Retry-After, else
    STRIPE_WAIT_SEC, so clients and the portal say to try again shortly."""


STRIPE_WAIT_SEC = 5  # Stripe's 429 rarely says how long: its advice is to back off a little


class StripeAmountTooSmall(InvalidRequest):
    """Stripe refused a top-up's amount as below its smallest charge (`amount_too_small`),
    which depends on the currency and on the account's settlement currency: the user's 400,
    counted as a refusal (asked again the same way it fails the same way)."""


@dataclass(frozen=True)
class CheckoutLink:
    session_id: str
    url: str


class StripeApi:
    """The Stripe calls the box makes, through one lazily created official client."""

    def __init__(self, config: StripeConfig, box_secret: str = "") -> None:
        self.config = config
        self.box_secret = box_secret  # server.secret_key: signs this box's setup sessions
        self._client: Any = None
        self._http: Any = None

    def client(self) -> Any:
        """The `stripe.StripeClient`, created (and `stripe` imported) on first use."""
        if self._client is None:
            import stripe

            base = self.config.api_base.rstrip("/")
            self._http = stripe.HTTPXClient(timeout=STRIPE_TIMEOUT_SEC)
            self._client = stripe.StripeClient(
                self.config.secret_key,
                base_addresses={"api": base} if base else None,
                http_client=self._http,
                max_network_retries=STRIPE_RETRIES,
            )
        return self._client

    async def create_checkout_session(self, params: dict[str, Any]) -> CheckoutLink:
        """Create a Checkout Session; its id and the URL to send the user to."""
        try:
            session = await self.client().v1.checkout.sessions.create_async(params)
        except Exception as exc:
            raise translate_error(exc, "create a Checkout Session") from None
        if not session.url:
            raise UpstreamError("Stripe returned a Checkout Session without a URL")
        return CheckoutLink(session_id=str(session.id), url=str(session.url))

    async def retrieve(self, kind: str, object_id: str) -> dict[str, Any]:
        """A Checkout Session, refund, dispute or charge (`kind` as Stripe names its object
        type), as a plain dict."""
        v1 = self.client().v1
        services = {"checkout.session": v1.checkout.sessions, "refund": v1.refunds}
        services |= {"dispute": v1.disputes, "charge": v1.charges}
        try:
            found = await services[kind].retrieve_async(object_id)
        except Exception as exc:
            if _resource_missing(exc):  # no failure: Stripe answered, the object is not there
                raise StripeObjectMissing(f"Stripe has no {kind} {object_id}") from None
            raise translate_error(exc, f"read the {kind}") from None
        return dict(found.to_dict())

    async def expire_checkout_session(self, session_id: str) -> dict[str, Any]:
        """Expire an open Checkout Session: the session, as a plain dict, now `expired`;
        StripeRefusal when Stripe refuses (its 400 for a session already complete or expired)."""
        try:
            session = await self.client().v1.checkout.sessions.expire_async(session_id)
        except Exception as exc:
            raise translate_error(exc, "expire the Checkout Session") from None
        return dict(session.to_dict())

    async def card_fingerprint(self, setup_intent_id: str) -> str | None:
        """The fingerprint of the card a SetupIntent saved (None if it saved no card)."""
        try:
            intent = await self.client().v1.setup_intents.retrieve_async(
                setup_intent_id, {"expand": ["payment_method"]}
            )
        except Exception as exc:
            raise translate_error(exc, "read the SetupIntent") from None
        method = intent.payment_method
        if method is None:
            return None
        if isinstance(method, str):
            try:
                method = await self.client().v1.payment_methods.retrieve_async(method)
            except Exception as exc:
                raise translate_error(exc, "read the PaymentMethod") from None
        card = getattr(method, "card", None)
        fingerprint = getattr(card, "fingerprint", None) if card is not None else None
        return str(fingerprint) if fingerprint else None

    async def sessions_of_intent(self, payment_intent: str) -> list[dict[str, Any]]:
        """The Checkout Sessions a PaymentIntent paid, as plain dicts (one, or none)."""
        params = {"payment_intent": payment_intent, "limit": 10}
        try:
            page = await self.client().v1.checkout.sessions.list_async(params)
        except Exception as exc:
            raise translate_error(exc, "find the PaymentIntent's Checkout Session") from None
        return [session.to_dict() for session in page.data]

    async def charge(self, charge_id: str) -> dict[str, Any]:
        """A charge, as a plain dict."""
        try:
            charge = await self.client().v1.charges.retrieve_async(charge_id)
        except Exception as exc:
            raise translate_error(exc, "read the charge") from None
        return dict(charge.to_dict())

    async def charge_refunds(self, charge_id: str) -> list[dict[str, Any]]:
        """Every refund of a charge, as plain dicts, oldest page first."""
        refunds: list[dict[str, Any]] = []
        params: dict[str, Any] = {"charge": charge_id, "limit": 100}
        while True:
            try:
                page = await self.client().v1.refunds.list_async(params)
            except Exception as exc:
                raise translate_error(exc, "list the charge's refunds") from None
            refunds.extend(item.to_dict() for item in page.data)
            if not page.has_more or not page.data:
                return refunds
            params["starting_after"] = str(page.data[-1].id)

    async def close(self) -> None:
        """Close the client's connections, if it was ever created."""
        if self._http is not None:
            await self._http.close_async()
            self._http = None
            self._client = None


def translate_error(exc: Exception, doing: str) -> CodelaceError:
    """One of our errors for a failed Stripe call; keys never reach the message."""
    import stripe

    if isinstance(exc, CodelaceError):
        return exc
    message = stripe_message(exc)
    log.warning("Stripe call failed (%s): %s: %s", doing, type(exc).__name__, message)
    if isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
        return ServiceUnavailable(
            f"Stripe refused the configured stripe.secret_key while trying to {doing}",
            code="stripe_auth_failed",
        )
    if isinstance(exc, stripe.APIConnectionError):
        if isinstance(exc.__cause__, TimeoutError) or "Timeout" in str(exc):
            return UpstreamTimeout(f"Stripe did not answer in time ({doing})")
        return UpstreamError(f"could not reach Stripe to {doing}", code="stripe_unreachable")
    if isinstance(exc, stripe.StripeError):
        return _stripe_error(exc, doing, message)
    log.exception("unexpected error talking to Stripe")
    return UpstreamError(f"unexpected error while trying to {doing}", code="stripe_error")


def _resource_missing(exc: Exception) -> bool:
    """Stripe's own 404 for an id it has no object of (not a 404 of a proxy, or of a URL)."""
    import stripe

    return (
        isinstance(exc, stripe.InvalidRequestError)
        and exc.http_status == 404
        and exc.code == "resource_missing"
    )


def _stripe_error(exc: Exception, doing: str, message: str) -> CodelaceError:
    """Stripe's answer to a request it refused or failed (`translate_error`)."""
    import stripe

    if isinstance(exc, stripe.InvalidRequestError) and exc.code == "amount_too_small":
        return StripeAmountTooSmall(
            f"amount_usd is below what Stripe charges at least: {message}",
            code="amount_too_small",
            param="amount_usd",
        )
    if isinstance(exc, stripe.RateLimitError):
        return _rate_limited(exc, doing)
    refusals = (stripe.InvalidRequestError, stripe.CardError, stripe.IdempotencyError)
    kind = StripeRefusal if isinstance(exc, refusals) else UpstreamError
    return kind(f"Stripe could not {doing}: {message}", code="stripe_error")


def _rate_limited(exc: Exception, doing: str) -> StripeRateLimited:
    """Stripe's 429: its Retry-After when it sends plausible seconds (1 to an hour), else
    STRIPE_WAIT_SEC."""
    headers = getattr(exc, "headers", None) or {}
    raw = next((str(v) for k, v in headers.items() if k.lower() == "retry-after"), "").strip()
    said = int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 6 else 0
    wait = said if 0 < said <= 3600 else STRIPE_WAIT_SEC
    return StripeRateLimited(
        f"Stripe is limiting this box's requests and could not {doing} now: try again in {wait} s",
        wait,
        code="stripe_rate_limited",
    )


def stripe_message(exc: Exception) -> str:
    """What Stripe said, keys masked and at most MAX_MESSAGE_CHARS long; for an answer that is
    not Stripe's JSON error (a page from a proxy or load balancer in between), its status only:
    the library would quote the whole page."""
    status = getattr(exc, "http_status", None)
    if status is not None and not _stripe_error_body(getattr(exc, "http_body", None)):
        return f"Stripe answered HTTP {status} without a Stripe error (a proxy in between?)"
    text = redact(str(getattr(exc, "user_message", None) or exc).strip())
    return text if len(text) <= MAX_MESSAGE_CHARS else text[:MAX_MESSAGE_CHARS] + "..."


def _stripe_error_body(body: object) -> bool:
    try:
        parsed = json.loads(body) if isinstance(body, str) else None
    except NOT_JSON:
        return False
    return isinstance(parsed, dict) and isinstance(parsed.get("error"), dict)


def verify_event(payload: bytes, signature: str | None, secret: str) -> dict[str, Any]:
    """The event of a webhook whose Stripe-Signature matches; 400 (InvalidRequest) otherwise."""
    import stripe

    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest("webhook body is not UTF-8", code="invalid_signature") from None
    if signature is not None and not signature.isascii():  # bytes no signature is made of
        warn_refused("not ASCII", signature)
        raise InvalidRequest(
            "webhook signature check failed: the Stripe-Signature header is not ASCII",
            code="invalid_signature",
        )
    try:
        stripe.WebhookSignature.verify_header(text, signature, secret, WEBHOOK_TOLERANCE_SEC)
    except stripe.SignatureVerificationError as exc:
        reason = str(exc).split(". ")[0] if signature else "missing Stripe-Signature header"
        warn_refused(reason, signature)
        raise InvalidRequest(
            f"webhook signature check failed: {redact(reason)}", code="invalid_signature"
        ) from None
    if _signed_at(signature) > time.time() + WEBHOOK_TOLERANCE_SEC:
        # The library only refuses old timestamps; one from the future is as far off.
        warn_refused(None, signature)
        raise InvalidRequest(
            "webhook signature check failed: Timestamp outside the tolerance zone",
            code="invalid_signature",
        )
    return _stripe_event(text)


def _stripe_event(text: str) -> dict[str, Any]:
    """A signed webhook body read as a Stripe event; 400 (InvalidRequest) when it is none."""
    try:
        event = json.loads(text)
        # text all of it, or the event's strings reach the database: a lone surrogate escape
        # (\ud800) is no text, UnicodeEncodeError (a ValueError) at its insert was a 500
        json.dumps(event, ensure_ascii=False).encode("utf-8")
    except NOT_JSON:
        raise InvalidRequest("webhook body is not JSON", code="invalid_event") from None
    if "\\u0000" in text and has_string(event, _has_nul):  # no text to PostgreSQL: a 500 there
        raise InvalidRequest("webhook event holds a NUL, which no Stripe object does",
                             code="invalid_event")  # fmt: skip
    if not isinstance(event, dict) or not event.get("id") or not event.get("type"):
        raise InvalidRequest("webhook body is not a Stripe event", code="invalid_event")
    if not _stripe_ids(event):
        raise InvalidRequest(
            f"webhook body is not a Stripe event: its type or an id is not a string of at "
            f"most {MAX_ID_CHARS} characters",
            code="invalid_event",
        )
    return event


def _stripe_ids(event: dict[str, Any]) -> bool:
    """Whether the event's id and type, and its object's id and the ids it names (expanded or
    not), are what Stripe's are: strings of at most MAX_ID_CHARS (a longer one is no row on
    PostgreSQL; a number or a list was read as its text)."""
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    refs = [event["id"], event["type"]]
    if isinstance(obj, dict):
        refs += [obj[name] for name in ("id", *_REFERENCES) if obj.get(name) is not None]
    ids = [ref.get("id") if isinstance(ref, dict) else ref for ref in refs[2:]]
    return all(isinstance(i, str) and len(i) <= MAX_ID_CHARS for i in [*refs[:2], *ids])


def _has_nul(text: str) -> bool:
    return "\x00" in text


def _signed_at(signature: str | None) -> int:
    """The `t=` of a Stripe-Signature header the library accepted, read as it reads it: the
    first, up to a second `=` ("t=<time>=x" verified as <time>; reading all of it was a 500)."""
    items = [item.split("=", 2) for item in (signature or "").split(",")]
    return int(next(item[1] for item in items if item[0] == "t"))
