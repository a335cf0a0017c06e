"""Stripe's wire format for the Stripe double: nested form decoding, the error envelope,
webhook signatures, and the checks Stripe makes on a new Checkout Session."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Any
from urllib.parse import parse_qsl

API_VERSION = "2026-10-28.endive"
SESSION_PARAMS = frozenset(
    {
        "mode",
        "line_items",
        "client_reference_id",
        "customer",
        "customer_email",
        "metadata",
        "success_url",
        "cancel_url",
        "currency",
        "allowed_payment_method_types",
        "expand",
        "payment_intent_data",
        "setup_intent_data",
        "expires_at",
        "locale",
        "ui_mode",
        "allow_promotion_codes",
        "submit_type",
        "customer_creation",
    }
)
MINIMUM_CHARGE = {"usd": 50, "eur": 50, "gbp": 30}
# Two-decimal in the API, but charged in whole units only (Stripe's "special cases": ISK)
WHOLE_UNITS_ONLY = frozenset({"isk"})


class StripeApiError(Exception):
    """A Stripe-shaped error answer (`html`: a page instead, as a proxy or load balancer in
    front of Stripe answers when it fails)."""

    html: str | None = None

    def __init__(
        self,
        status: int,
        message: str,
        param: str | None = None,
        code: str | None = None,
        error_type: str = "invalid_request_error",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}  # sent with the answer (a 429's Retry-After)
        error: dict[str, Any] = {"type": error_type, "message": message}
        if param:
            error["param"] = param
        if code:
            error["code"] = code
        self.body = {"error": error}


def new_id(prefix: str) -> str:
    return f"{prefix}_test_{secrets.token_hex(12)}"


def _split_key(key: str) -> list[str]:
    """'line_items[0][price_data][currency]' -> ['line_items', '0', 'price_data', 'currency']."""
    head, bracket, rest = key.partition("[")
    if not bracket:
        return [key]
    return [head, *re.findall(r"\[([^\]]*)\]", "[" + rest)]


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    items = {k: _listify(v) for k, v in node.items()}
    if items and all(k.isdigit() for k in items):
        indexes = sorted(int(k) for k in items)
        if indexes == list(range(len(indexes))):
            return [items[str(i)] for i in indexes]
    return items


def decode_form(text: str) -> dict[str, Any]:
    """Stripe's form encoding with nested keys, back into dicts and lists."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        parts = _split_key(key)
        node = root
        for index, part in enumerate(parts):
            name = str(len(node)) if part == "" else part
            if index == len(parts) - 1:
                node[name] = value
                break
            child = node.setdefault(name, {})
            if not isinstance(child, dict):
                raise StripeApiError(400, f"Invalid value for {key}: mixed scalar and hash")
            node = child
    return _listify(root)


def sign_payload(payload: bytes, secret: str, timestamp: int) -> str:
    """The Stripe-Signature header value for a body, as Stripe computes it."""
    signed = f"{timestamp}.".encode() + payload
    v1 = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    v0 = hmac.new(b"legacy-scheme", signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={v1},v0={v0}"


def check_common(params: dict[str, Any]) -> None:
    """What Stripe checks on any new Checkout Session: known params, URLs, reference, metadata."""
    for name in params:
        if name not in SESSION_PARAMS:
            raise StripeApiError(400, f"Received unknown parameter: {name}", param=name)
    for name in ("success_url", "cancel_url"):
        url = params.get(name)
        if url is not None and not re.match(r"^https?://[^/\s]+", url):
            raise StripeApiError(400, f"Not a valid URL: {name}", param=name, code="url_invalid")
        if url is not None and not url.isascii():  # Stripe's own words
            raise StripeApiError(
                400,
                "Invalid URL: Non-ASCII characters in URLs must be percent-encoded in order "
                "for the URL to be valid",
                param=name,
                code="url_invalid",
            )
    reference = params.get("client_reference_id")
    if reference is not None and not 1 <= len(reference) <= 200:
        raise StripeApiError(400, "Invalid client_reference_id", param="client_reference_id")
    metadata = params.get("metadata", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise StripeApiError(400, "Invalid hash", param="metadata")


def session_expiry(params: dict[str, Any], now: int) -> int:
    """When a new session expires: its `expires_at`, which Stripe takes from 30 minutes to 24
    hours after it is created (400 otherwise), else 24 hours."""
    raw = params.get("expires_at")
    if raw is None:
        return now + 86400
    if not str(raw).isdigit():
        raise StripeApiError(400, "Invalid integer: expires_at", param="expires_at")
    if not now + 30 * 60 <= int(raw) <= now + 86400:
        raise StripeApiError(
            400,
            "The `expires_at` timestamp must be between 30 minutes and 24 hours after the "
            "Checkout Session is created.",
            param="expires_at",
        )
    return int(raw)


def payment_total(params: dict[str, Any]) -> tuple[int, str]:
    items = params.get("line_items")
    if not isinstance(items, list) or not items:
        raise StripeApiError(400, "`line_items` is required in `payment` mode.", param="line_items")
    total, currencies = 0, set()
    for index, item in enumerate(items):
        where = f"line_items[{index}]"
        price = item.get("price_data") if isinstance(item, dict) else None
        if not isinstance(price, dict):
            raise StripeApiError(400, f"Missing required param: {where}[price_data].", param=where)
        amount, quantity = price.get("unit_amount", ""), item.get("quantity", "")
        if not amount.isdigit() or not quantity.isdigit() or int(quantity) < 1:
            raise StripeApiError(400, f"Invalid integer in {where}", param=where)
        name = (price.get("product_data") or {}).get("name")
        if not price.get("currency") or not name:
            raise StripeApiError(400, f"Missing required param: {where}[price_data].", param=where)
        currencies.add(price["currency"])
        total += int(amount) * int(quantity)
    if len(currencies) != 1:
        raise StripeApiError(400, "All line items must use the same currency.")
    currency = currencies.pop()
    if currency in WHOLE_UNITS_ONLY and total % 100:
        raise StripeApiError(
            400,
            f"Invalid amount. Currency {currency.upper()} has become effectively zero-decimal "
            "and charged amounts must be evenly divisible by 100.",
            code="invalid_charge_amount_no_decimal_compatible",
        )
    if total < MINIMUM_CHARGE.get(currency, 50):
        raise StripeApiError(
            400,
            "The Checkout Session's total amount due must add up to at least $0.50 usd",
            code="amount_too_small",
        )
    return total, currency


def setup_currency(params: dict[str, Any]) -> str | None:
    if params.get("line_items"):
        raise StripeApiError(400, "You can not pass `line_items` in `setup` mode.")
    currency = params.get("currency")
    if not currency and not params.get("allowed_payment_method_types"):
        raise StripeApiError(
            400,
            "Missing required param: currency. It is required in `setup` mode when "
            "`allowed_payment_method_types` is not set.",
            param="currency",
        )
    return currency
