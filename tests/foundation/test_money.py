"""money.py: exact integer nano-USD, never a float's noise."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from codelace_box.money import (
    NANOS_PER_USD,
    AmountTooLarge,
    format_usd,
    nanos_to_decimal,
    priced_tokens_nanos,
    token_cost_nanos,
    usd_json,
    usd_text,
    usd_to_nanos,
)


@pytest.mark.parametrize(
    ("amount", "nanos"),
    [
        ("1", 1_000_000_000),
        ("0.000000001", 1),
        ("-2.5", -2_500_000_000),
        (Decimal("10.123456789"), 10_123_456_789),
        ("1e-9", 1),
        (7, 7_000_000_000),
        (0.1, 100_000_000),  # a float by its shortest repr, "0.1", not 0.1000000000000000055...
        ("  3.30 ", 3_300_000_000),
        ("1000000", 10**15),
        ("0e999999999", 0),  # zero with any exponent is zero, at once
        ("-0E-999999999", 0),
        ("1.000000000000000000000000000000000000000", 10**9),  # trailing zeros are exact
        ("123456789012345678.123456789", 123456789012345678123456789),
    ],
)
def test_usd_to_nanos_is_exact(amount: object, nanos: int) -> None:
    result = usd_to_nanos(amount)  # type: ignore[arg-type]
    assert result == nanos
    assert type(result) is int


@pytest.mark.parametrize(
    "amount",
    [
        0.1 + 0.2,  # 0.30000000000000004: float noise finer than a nano-dollar
        "0.0000000001",
        "1.0000000005",
        "abc",
        "",
        "NaN",
        "inf",
        True,
        "1e-999999999",  # below Decimal's exponent range: it underflowed to a silent 0
        "-1e-1000000",
        "1e999999999",  # above it: decimal.Overflow, which is no ValueError
        "1e1000000",
        "1.00000000000000000000000000000001",  # past 28 digits: it was rounded to 1 USD
        "0.1000000000000000000000000000000000000009",
        "1_000",  # Decimal reads it as 1000
        "\u0663",  # ARABIC-INDIC DIGIT THREE: Decimal reads it as 3
    ],
)
def test_usd_to_nanos_refuses_what_is_not_an_exact_amount(amount: object) -> None:
    with pytest.raises(ValueError):
        usd_to_nanos(amount)  # type: ignore[arg-type]


def test_usd_json_shows_amounts_without_noise() -> None:
    assert usd_json(1) == 1e-9
    assert usd_json(3_300_000_000) == 3.3
    assert usd_json(-10) == -1e-8
    assert str(usd_json(123_456_789_012)) == "123.456789012"
    assert nanos_to_decimal(1_500_000_000) == Decimal("1.5")
    assert usd_to_nanos(nanos_to_decimal(987_654_321_123)) == 987_654_321_123


def test_usd_json_and_usd_text_match_the_exact_decimal() -> None:
    """The float nearest the exact amount and its exact text, across the stored range."""
    chosen = random.Random(19)
    amounts = [0, 1, -1, 999_999_999, 2**63 - 1, -(2**63)]
    amounts += [chosen.randrange(-(2**63), 2**63) for _ in range(20_000)]
    amounts += [chosen.randrange(0, 10**12) for _ in range(20_000)]  # everyday charges
    for nanos in amounts:
        assert usd_json(nanos) == float(Decimal(nanos) / NANOS_PER_USD), nanos
        assert usd_text(nanos) == format(nanos_to_decimal(nanos), "f"), nanos


def test_format_usd() -> None:
    assert format_usd(1_234_567_891) == "$1.234568"
    assert format_usd(1_234_567_891, 9) == "$1.234567891"
    assert format_usd(-5 * NANOS_PER_USD, 2) == "-$5.00"
    assert format_usd(0) == "$0.000000"
    assert format_usd(0, 9) == "$0.000000000"  # not Decimal's "0E-9"
    assert format_usd(1, 9) == "$0.000000001"
    assert format_usd(-1, 9) == "-$0.000000001"


def test_format_usd_trims_trailing_zeros_down_to_the_places_asked() -> None:
    assert format_usd(12_500_000_000, 6, trim_to=0) == "$12.5"
    assert format_usd(3 * NANOS_PER_USD, 6, trim_to=0) == "$3"
    assert format_usd(123_000, 6, trim_to=0) == "$0.000123"
    assert format_usd(42_500_000_000, 9, trim_to=2) == "$42.50"
    assert format_usd(1_334_567_891, 9, trim_to=2) == "$1.334567891"
    assert format_usd(-2 * NANOS_PER_USD, 9, trim_to=2) == "-$2.00"


def test_format_usd_of_less_than_half_its_last_place_below_zero_is_zero() -> None:
    """An account's balance less its holds 400 nano-USD below zero (a refund taken while a
    request was in flight) is told in the 402 at 6 places: Decimal's -0 read "$-0.00"."""
    assert format_usd(-400, 6, trim_to=2) == "$0.00"
    assert format_usd(-400) == "$0.000000"
    assert format_usd(-600, 6, trim_to=2) == "-$0.000001"


def test_usd_text_is_exact_plain_decimal_text() -> None:
    assert usd_text(15 * NANOS_PER_USD) == "15"
    assert usd_text(150 * NANOS_PER_USD) == "150"  # not 1.5E+2
    assert usd_text(150_000_000) == "0.15"
    assert usd_text(10) == "0.00000001"  # not 1E-8
    assert usd_text(0) == "0"
    assert usd_text(-2_500_000_000) == "-2.5"


def test_one_token_at_one_cent_per_million_costs_ten_nanos() -> None:
    one_cent = usd_to_nanos("0.01")
    assert token_cost_nanos(1, 0, one_cent, 0) == 10
    assert token_cost_nanos(0, 1, 0, one_cent) == 10


def test_token_cost_rounds_up_to_the_next_nano() -> None:
    # $0.000003 per 1M tokens: one token is 0.003 nano-USD, charged as 1, never 0.
    price = usd_to_nanos("0.000003")
    assert token_cost_nanos(1, 0, price, 0) == 1
    assert token_cost_nanos(333, 0, price, 0) == 1  # 0.999 nano
    assert token_cost_nanos(334, 0, price, 0) == 2  # 1.002 nano
    assert token_cost_nanos(0, 0, price, price) == 0


def test_token_cost_at_real_prices_is_exact() -> None:
    # 1,234 input tokens at $3/1M + 567 output tokens at $15/1M = $0.003702 + $0.008505
    cost = token_cost_nanos(1234, 567, usd_to_nanos(3), usd_to_nanos(15))
    assert cost == 12_207_000
    assert nanos_to_decimal(cost) == Decimal("0.012207")
    # a million requests of one token each never drift: integers add exactly
    assert sum(token_cost_nanos(1, 0, usd_to_nanos("0.01"), 0) for _ in range(10**5)) == 10**6


@pytest.mark.parametrize(
    ("args", "cost"),
    [((-5, 2, 10**6, 10**6), 2), ((3, -1, 10**6, 10**6), 3), ((1, 1, -(10**6), 10**6), 1)],
)
def test_negative_counts_and_prices_never_make_a_negative_cost(
    args: tuple[int, int, int, int], cost: int
) -> None:
    assert token_cost_nanos(*args) == cost


def test_the_charge_of_a_call_rounds_up_once_to_the_next_nano() -> None:
    # What every settlement charges (gateway/metering.py Settlement.cost_nanos): a fraction
    # of a nano-USD is charged as one, and the parts (input, cache reads, cache writes,
    # output) are summed before that one rounding.
    price = usd_to_nanos("0.000003")  # 0.003 nano-USD a token
    assert priced_tokens_nanos((1, price)) == 1
    assert priced_tokens_nanos((333, price), (1, 0)) == 1  # 0.999 nano
    assert priced_tokens_nanos((334, price)) == 2  # 1.002 nano
    assert priced_tokens_nanos((1, 500_000), (1, 500_000)) == 1  # two halves: one nano, not two
    assert priced_tokens_nanos((1234, usd_to_nanos(3)), (567, usd_to_nanos(15))) == 12_207_000
    assert priced_tokens_nanos() == 0


def test_the_charge_of_a_call_prices_negative_counts_and_prices_as_none() -> None:
    # An upstream's confused counts (more cached tokens than input tokens) leave a negative
    # uncached count: it must not take from the other parts' cost, nor a cost be negative.
    assert priced_tokens_nanos((-500, 10**6), (3, 10**6)) == 3
    assert priced_tokens_nanos((5, -(10**6)), (3, 10**6)) == 3
    assert priced_tokens_nanos((-5, -(10**6))) == 0


def test_amounts_written_with_thousands_of_digits_are_read_or_refused_in_words() -> None:
    """Past Python's 4300-digit limit of int() an amount's coefficient raised 'Exceeds the limit
    (4300 digits) for integer string conversion ... use sys.set_int_max_str_digits()', and a
    PATCH of a key's limit_usd answered that text; $1 written with 5000 zeros was refused."""
    assert usd_to_nanos("1." + "0" * 5000) == NANOS_PER_USD
    assert usd_to_nanos("0." + "0" * 5000) == 0
    with pytest.raises(AmountTooLarge) as huge:
        usd_to_nanos("1" * 5000)
    with pytest.raises(ValueError) as fine:
        usd_to_nanos("0." + "0" * 4999 + "1")
    for refused in (huge, fine):
        assert "sys." not in str(refused.value) and "4300" not in str(refused.value)
    assert "more precise than a nano-dollar" in str(fine.value)
