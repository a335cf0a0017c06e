"""How the screens write numbers, money and moments: short, aligned, never a secret."""

from __future__ import annotations

from datetime import date, datetime

from rich.text import Text

from admin_tui.services import format_usd


def usd(nanos: int, places: int = 2) -> str:
    """Money for a table cell, e.g. '$12.50' (cents unless a finer figure is asked for)."""
    return format_usd(nanos, places)


def usd_fine(nanos: int) -> str:
    """Money where sub-cent amounts matter (request costs): up to 6 places, trailing zeros off;
    an amount those round to nothing exactly (a $0.0000004 request is not "$0", free)."""
    shown = format_usd(nanos, 6, trim_to=0)
    return format_usd(nanos, 9, trim_to=0) if nanos and shown.strip("$-") == "0" else shown


def usd_figure(nanos: int) -> str:
    """A sum of spend for the dashboard's figures: at least cents, up to 6 places (a cheap
    model's $0.004 of an hour is no "$0.00", nothing spent), exactly when those round to
    nothing."""
    shown = format_usd(nanos, 6, trim_to=2)
    return usd_exact(nanos) if nanos and shown.strip("$-") == "0.00" else shown


def usd_exact(nanos: int) -> str:
    """Money exactly (to the nano-dollar) with at least cents, e.g. '$42.50', '$0.000123'."""
    return format_usd(nanos, 9, trim_to=2)


def count(value: int) -> str:
    """A count with thousands separators."""
    return f"{value:,}"


def moment(value: datetime | None) -> str:
    """A UTC timestamp to the second, or a dash."""
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "—"


def clock_moment(value: datetime | None, today: date) -> str:
    """A UTC moment for a live table: the time to the second when it is `today`, else as
    `history_moment` (narrow either way), or a dash."""
    if value is not None and value.date() == today:
        return value.strftime("%H:%M:%S")
    return history_moment(value, today)


def dated_moment(value: datetime | None) -> str:
    """A UTC timestamp with its year, to the minute (an expiry: one a year ahead is not
    today), or a dash."""
    return value.strftime("%Y-%m-%d %H:%M") if value else "—"


def history_moment(value: datetime | None, now: date) -> str:
    """A UTC moment of the history to the minute, or a dash: '12-07 09:15' in the current UTC
    year (that of `now`), with its year otherwise ('2025-12-07 09:15': on a box older than a
    year, last December's rows are no this December's)."""
    if value is None:
        return "—"
    return value.strftime("%m-%d %H:%M" if value.year == now.year else "%Y-%m-%d %H:%M")


def status_cell(status: str) -> Text:
    """A status word coloured by what it means."""
    good = {"ok", "active", "completed", "yes", "enabled", "in use"}
    bad = {"error", "disabled", "failed", "failing", "no", "off", "no (provider off)"}
    style = "green" if status in good else "red" if status in bad else "yellow"
    return Text(status, style=style)


def paid_cell(amount_nanos: int, refunded_nanos: int) -> Text:
    """A payment's amount, with what Stripe refunds and disputes took back of it, if any:
    exactly (an admin credit of $0.005 is no "$0.00"), Stripe's whole cents as cents."""
    taken = f" (-{usd_exact(refunded_nanos)} refunded)" if refunded_nanos else ""
    return right(usd_exact(amount_nanos) + taken)


def right(value: str) -> Text:
    """A right-aligned cell (numbers, money)."""
    return Text(value, justify="right")


def alarm(value: int) -> Text:
    """A count that is bad news when not zero (failing keys, errors)."""
    return Text(str(value), style="bold red" if value else "", justify="right")
