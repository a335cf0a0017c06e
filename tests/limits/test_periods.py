"""The periods of a key's cap, in UTC: a day from 00:00, a week from Monday 00:00, a month from
the 1st; and the spend shown for a period that is over."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from codelace_box.accounts.limits import parse_expiry, period_start, period_starts
from codelace_box.errors import InvalidRequest


@pytest.mark.parametrize(
    ("now", "reset", "start"),
    [
        ("2026-03-15 13:45:10", "daily", "2026-03-15 00:00:00"),
        ("2026-03-15 00:00:00", "daily", "2026-03-15 00:00:00"),
        ("2026-03-15 23:59:59.999999", "weekly", "2026-03-09 00:00:00"),  # a Sunday
        ("2026-03-16 00:00:00", "weekly", "2026-03-16 00:00:00"),  # the Monday after
        ("2026-03-01 00:00:00", "weekly", "2026-02-23 00:00:00"),  # across a month
        ("2026-01-01 08:00:00", "weekly", "2025-12-29 00:00:00"),  # across a year
        ("2026-03-31 23:59:59", "monthly", "2026-03-01 00:00:00"),
        ("2026-04-01 00:00:00", "monthly", "2026-04-01 00:00:00"),
        ("2028-02-29 12:00:00", "monthly", "2028-02-01 00:00:00"),
    ],
)
def test_a_period_starts_where_the_spec_says(now: str, reset: str, start: str) -> None:
    assert period_start(reset, datetime.fromisoformat(now)) == datetime.fromisoformat(start)


def test_a_key_without_reset_has_no_period_boundary() -> None:
    assert period_start(None, datetime(2026, 5, 5, 5, 5)) is None


def test_period_starts_are_stored_text_that_orders_like_time() -> None:
    daily, weekly, monthly = period_starts(datetime(2026, 3, 18, 9, 30))
    assert (daily, weekly, monthly) == (
        "2026-03-18 00:00:00",
        "2026-03-16 00:00:00",
        "2026-03-01 00:00:00",
    )
    assert monthly < weekly < daily < "2026-03-18 09:30:00"


@pytest.mark.parametrize(("text", "days"), [("7d", 7), ("\u0663d", None), ("\u00b2d", None)])
def test_a_relative_expiry_is_ascii_digits(text: str, days: int | None) -> None:
    """`keys create --expires 7d` and the dashboard's form: an Arabic-Indic 3 was read as 3."""
    now = datetime(2026, 3, 15, 12, 0, 0)
    if days is None:
        with pytest.raises(InvalidRequest, match="expires_at"):
            parse_expiry(text, now, relative=True)
    else:
        assert parse_expiry(text, now, relative=True) == now + timedelta(days=days)


def test_a_bad_expiry_is_told_an_example_a_year_ahead_not_a_fixed_date() -> None:
    """A fixed example (2026-12-31) would soon be a time in the past, which is refused."""
    now = datetime(2031, 3, 15, 12, 0, 0)
    with pytest.raises(InvalidRequest, match=r"such as 2032-03-14T23:59:59Z"):
        parse_expiry("", now)


@pytest.mark.parametrize(("text", "noted"), [("2031-03-15", True), ("2020-01-01", False)])
def test_a_past_date_is_told_the_end_of_its_day_only_while_that_is_ahead(
    text: str, noted: bool
) -> None:
    """Today's date is told its end (23:59:59Z) is the time meant; a date long past was told
    the same, offering a moment just as past."""
    now = datetime(2031, 3, 15, 12, 0, 0)
    with pytest.raises(InvalidRequest, match=f"{text} is in the past") as refused:
        parse_expiry(text, now)
    assert (f"{text}T23:59:59Z" in str(refused.value)) is noted, str(refused.value)
