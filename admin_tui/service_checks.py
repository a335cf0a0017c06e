"""Checks of what the operator typed, run before a feature function (or a confirmation) sees
it: part of the services door (imported only by admin_tui.services, which re-exports them)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from codelace_box.billing import credits
from codelace_box.errors import InvalidRequest

MAX_SQLITE_INTEGER = 2**63 - 1  # a larger max output tokens would not fit its column
ADJUSTMENT_LIMIT = credits.ADJUSTMENT_LIMIT


def parse_token_cap(text: str) -> int | None:
    """An optional whole number of tokens."""
    text = text.strip().replace("_", "").replace(",", "")
    if not text:
        return None
    if not text.isdigit() or int(text) > MAX_SQLITE_INTEGER:
        raise InvalidRequest(f"max output tokens must be a whole number of sane size, got {text!r}")
    return int(text)


def check_adjustment(amount_usd: str, reason: str) -> int:
    """The nano-USD of an adjustment the feature would accept (checked before confirming)."""
    return credits.check_adjustment(within_range(amount_usd, ADJUSTMENT_LIMIT), reason)


def within_range(text: str, message: str) -> str:
    """Typed USD text, stripped; InvalidRequest(message) if too large for exact money math."""
    text = text.strip()
    try:
        value = Decimal(text)
    except InvalidOperation:
        return text
    if value.is_finite() and value != 0 and value.adjusted() > 15:
        raise InvalidRequest(message)
    return text
