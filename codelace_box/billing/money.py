"""Exact money: integer nano-USD (1 USD = 1_000_000_000) and conversions to and from USD.

JSON shows USD numbers; internally nothing is ever a float. A price of $0.01 per 1M tokens is
10 nano-USD per token, so one token of the cheapest sane model is never rounded away.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

NANOS_PER_USD = 1_000_000_000
TOKENS_PER_PRICE_UNIT = 1_000_000


def usd_to_nanos(amount: Decimal | int | float | str) -> int:
    """USD (given exactly, as text or Decimal; floats via their shortest repr) to nano-USD."""
    try:
        value = Decimal(str(amount)) if not isinstance(amount, Decimal) else amount
    except InvalidOperation:
        raise ValueError(f"not a number: {amount!r}") from None
    if not value.is_finite():
        raise ValueError(f"not a finite number: {amount!r}")
    nanos = value * NANOS_PER_USD
    if nanos != nanos.to_integral_value():
        raise ValueError(f"more precise than a nano-dollar: {amount!r}")
    return int(nanos)


def nanos_to_usd(nanos: int) -> float:
    """nano-USD to a USD number for JSON (exact to 9 decimals, shown without noise)."""
    return float(Decimal(nanos) / NANOS_PER_USD)


def nanos_to_decimal(nanos: int) -> Decimal:
    """nano-USD as an exact Decimal of USD."""
    return (Decimal(nanos) / NANOS_PER_USD).normalize()


def format_usd(nanos: int, places: int = 6) -> str:
    """nano-USD as a readable '$1.234567' string (rounded half-even to `places`)."""
    quantum = Decimal(1).scaleb(-places)
    value = (Decimal(nanos) / NANOS_PER_USD).quantize(quantum, rounding=ROUND_HALF_EVEN)
    return f"-${-value:f}" if value < 0 else f"${value:f}"


def token_cost_nanos(
    input_tokens: int, output_tokens: int, input_per_1m_nanos: int, output_per_1m_nanos: int
) -> int:
    """Cost of a request at per-1M-token prices, rounded up to the next nano-USD.

    Negative counts or prices (a confused upstream) count as zero: a cost is never negative,
    so a request can never add credit.
    """
    counts = (max(0, input_tokens), max(0, output_tokens))
    prices = (max(0, input_per_1m_nanos), max(0, output_per_1m_nanos))
    scaled = counts[0] * prices[0] + counts[1] * prices[1]
    return -(-scaled // TOKENS_PER_PRICE_UNIT)
