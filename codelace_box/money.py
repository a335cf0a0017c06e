"""Exact money: integer nano-USD (1 USD = 1_000_000_000) and conversions to and from USD.

JSON shows USD numbers (`usd_json`); people read `format_usd` ('$1.50') or, for prices and
headers, `usd_text` ('1.5'); internally nothing is ever a float. A price of $0.01 per 1M tokens is
10 nano-USD per token, so one token of the cheapest sane model is never rounded away.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

NANOS_PER_USD = 1_000_000_000
TOKENS_PER_PRICE_UNIT = 1_000_000
# Amounts of 10**1000 USD and more are refused here, before their integer is built; anything
# smaller is converted, so callers' own limits (far lower) name the real bound.
MAX_USD_DIGITS = 999
# An amount typed as text (the CLI, the dashboard, the portal, a JSON string): plain decimals,
# as people write money; not Decimal's other spellings ("1e2" was $100; "NaN", "0x10")
PLAIN_USD = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")  # fullmatch
PLAIN_USD_TAKEN = "a USD amount such as 20 or 12.5 (plain decimals, at most 9 decimals)"


# Thousands commas as the pages write numbers ("$10,000.00", "1,000 per minute"), and people
# type them in a form: groups of three after the first; a decimal comma ("10,50") is no such
# grouping and stays, to be refused.
GROUPED_NUMBER = re.compile(r"[+-]?[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]*)?")


def ungrouped(text: str) -> str:
    """A number typed in a form (the portal's top-up and key cap, the dashboard's limits),
    trimmed, its thousands commas read ("1,250.50" -> "1250.50"); other text as it is."""
    text = text.strip()
    return text.replace(",", "") if GROUPED_NUMBER.fullmatch(text) else text


def typed_usd(text: str) -> str:
    """An amount typed in a form: as `ungrouped`, a leading `$` taken off first ("$" alone
    stays: no amount, where a blank field clears a cap)."""
    text = text.strip()
    return ungrouped(text[1:] if text.startswith("$") and text[1:].strip() else text)


def is_plain_usd(amount: object) -> bool:
    """Whether an amount is no text, or text in plain decimals (PLAIN_USD)."""
    return not isinstance(amount, str) or PLAIN_USD.fullmatch(amount.strip()) is not None


class AmountTooLarge(ValueError):
    """An amount of 10**1000 USD or more: callers name their own (far lower) bound."""


def usd_to_nanos(amount: Decimal | int | float | str) -> int:
    """USD (given exactly, as text or Decimal; floats via their shortest repr) to nano-USD."""
    if isinstance(amount, str) and ("_" in amount or not amount.isascii()):
        # Decimal reads "1_000" as 1000, and other scripts' digits ("٣") as ours
        raise ValueError(f"not a number: {_shown(amount)}")
    try:
        value = Decimal(str(amount)) if not isinstance(amount, Decimal) else amount
    except InvalidOperation:
        raise ValueError(f"not a number: {_shown(amount)}") from None
    if not value.is_finite():
        raise ValueError(f"not a finite number: {_shown(amount)}")
    return _exact_nanos(value, amount)


def _shown(amount: object) -> str:
    """An amount as the user gave it: text quoted, a number as written (not Decimal('1.5'))."""
    return repr(amount) if isinstance(amount, str) else str(amount)


def _exact_nanos(value: Decimal, amount: object) -> int:
    """value * 10**9 in integers: Decimal arithmetic would round past 28 digits, underflow a
    tiny value to 0 and overflow a huge one (1e999999999) instead of refusing them."""
    sign, digits, exponent = value.as_tuple()
    significant = len(digits)
    while significant > 1 and digits[significant - 1] == 0:  # "1.000...0" is $1, any length
        significant -= 1
    if not any(digits[:significant]):
        return 0
    if value.adjusted() > MAX_USD_DIGITS:
        raise AmountTooLarge(f"too large: {_shown(amount)}")
    shift = int(exponent) + len(digits) - significant + 9
    if value.adjusted() < -9 or shift < 0:  # a non-zero last digit below the nano-dollar
        raise ValueError(f"more precise than a nano-dollar: {_shown(amount)}")
    # at most MAX_USD_DIGITS + 10 digits here: within int()'s limit on digits
    nanos = int("".join(map(str, digits[:significant]))) * 10**shift
    return -nanos if sign else nanos


def usd_json(nanos: int) -> float:
    """nano-USD as the USD number the HTTP API and `--json` show (exact to 9 decimals, without
    noise: 1 nano-USD is 1e-09, 3.3 USD is 3.3). Integer true division rounds the exact quotient
    once, to the nearest float, as float(Decimal quotient) does, in a tenth of its time."""
    return nanos / NANOS_PER_USD


def nanos_to_decimal(nanos: int) -> Decimal:
    """nano-USD as an exact Decimal of USD."""
    return (Decimal(nanos) / NANOS_PER_USD).normalize()


def usd_text(nanos: int) -> str:
    """nano-USD as exact plain decimal text, no sign of currency, no noise: '15', '0.00000001'
    (the text of `nanos_to_decimal`, made from the integer's digits without a Decimal)."""
    whole, fraction = divmod(-nanos if nanos < 0 else nanos, NANOS_PER_USD)
    text = f"{whole}.{fraction:09d}".rstrip("0") if fraction else str(whole)
    return f"-{text}" if nanos < 0 else text


def format_usd(nanos: int, places: int = 6, *, trim_to: int | None = None) -> str:
    """nano-USD as a readable '$1.234567' string, rounded half-even to `places`; with `trim_to`,
    trailing zeros go down to that many places ('$0.5' at 0, '$42.50' at 2, '$3' at 0)."""
    quantum = Decimal(1).scaleb(-places)
    value = (Decimal(nanos) / NANOS_PER_USD).quantize(quantum, rounding=ROUND_HALF_EVEN)
    text = f"-${-value:f}" if value < 0 else f"${abs(value):f}"  # (abs: Decimal's -0 read "-0")
    if trim_to is None or "." not in text:
        return text
    whole, _, fraction = text.partition(".")
    fraction = fraction.rstrip("0").ljust(trim_to, "0")
    return f"{whole}.{fraction}" if fraction else whole


def token_cost_nanos(
    input_tokens: int, output_tokens: int, input_per_1m_nanos: int, output_per_1m_nanos: int
) -> int:
    """Cost of a request at per-1M-token prices, rounded up to the next nano-USD.

    Negative counts or prices (a confused upstream) count as zero: a cost is never negative,
    so a request can never add credit.
    """
    scaled = 0  # (comparisons, not max(0, n): the builtin's call costs 6x as much)
    if input_tokens > 0 and input_per_1m_nanos > 0:
        scaled += input_tokens * input_per_1m_nanos
    if output_tokens > 0 and output_per_1m_nanos > 0:
        scaled += output_tokens * output_per_1m_nanos
    return -(-scaled // TOKENS_PER_PRICE_UNIT)


def priced_tokens_nanos(*counts_at_prices: tuple[int, int]) -> int:
    """Cost of several (token count, nano-USD per 1M tokens) pairs, rounded up once to the
    next nano-USD (so splitting input into cache reads and writes rounds no differently).
    Negative counts or prices count as zero. (A loop: `sum()` of a generator made one a call.)"""
    scaled = 0
    for count, price in counts_at_prices:
        if count > 0 and price > 0:
            scaled += count * price
    return -(-scaled // TOKENS_PER_PRICE_UNIT)
