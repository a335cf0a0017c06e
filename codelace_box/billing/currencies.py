"""Top-ups paid in a currency other than `stripe.currency`: credit is one unit per currency
unit, with no exchange rate, so a currency changed after top-ups were made would count the new
one at par with the old in every balance. `serve` refuses to start and `doctor` fails on it
until the currency is set back, or the old one is listed in `stripe.par_currencies` (the
operator counting it at par on purpose). With Stripe off no top-up can be made: not judged.
"""

from __future__ import annotations

from peewee import fn

from codelace_box.config import StripeConfig
from codelace_box.db.models import Payment
from codelace_box.errors import ConfigError


def other_currency_topups(stripe: StripeConfig) -> dict[str, int]:
    """Completed top-ups per currency that is neither `stripe.currency` nor one taken at par;
    {} with Stripe off."""
    if not (stripe.secret_key and stripe.webhook_secret):
        return {}
    accepted = [stripe.currency.lower(), *(c.lower() for c in stripe.par_currencies)]
    rows = (
        Payment.select(Payment.currency, fn.COUNT(Payment.id))
        .where(
            (Payment.kind == "topup")
            & (Payment.status == "completed")
            & Payment.currency.not_in(accepted)
        )
        .group_by(Payment.currency)
        .order_by(Payment.currency)
        .tuples()
    )
    return {str(row[0]): int(row[1]) for row in rows.iterator()}


def mixed_currency_problem(stripe: StripeConfig) -> str | None:
    """What is wrong, in one line, when completed top-ups were paid in another currency than
    `stripe.currency` (and one not taken at par); None when nothing is."""
    others = other_currency_topups(stripe)
    if not others:
        return None
    paid = ", ".join(f"{n} top-up{'s' if n > 1 else ''} paid in {c}" for c, n in others.items())
    names = ", ".join(others)
    return (
        f"stripe.currency is {stripe.currency}, but the balances hold {paid}: credit counts one "
        f"unit per currency unit with no exchange rate, so new top-ups would be credited at par "
        f"with them. Set stripe.currency back to {names}, or list {names} in "
        f"stripe.par_currencies to count {'it' if len(others) == 1 else 'them'} at par on purpose"
    )


def refuse_mixed_currency(stripe: StripeConfig) -> None:
    """ConfigError (serve's one line at start, exit 78) when `mixed_currency_problem` finds one."""
    if problem := mixed_currency_problem(stripe):
        raise ConfigError(f"refusing to serve: {problem}")
