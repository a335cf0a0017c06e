"""USD amounts as the command line reads them (`UsdAmount`: one parser for every option that
takes one) and as its text shows them: exact to the nano-dollar at any size.

`--json` keeps the HTTP API's numbers (floats, `money.usd_json`), which cannot hold every
nano-dollar above 2**53 nano-USD (about 9 million USD): read as text from them, a credit of one
nano-dollar could leave "balance now" as it was. The text reads the integers instead."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import click

from codelace_box.errors import InvalidRequest
from codelace_box.money import usd_text

_PLAIN_DECIMAL = re.compile(r"(?:[0-9]+(?:\.[0-9]{0,9})?|\.[0-9]{1,9})")  # fullmatch
_TAKEN = "plain decimal digits such as 20 or 12.5"
_RULES = "no exponent, at most 9 decimals"


class UsdAmount(click.ParamType):
    """A USD amount as plain decimal digits, at most 9 decimals (the nano-dollar), given back as
    its text. Refused alike on every option: an exponent (`1e2`), `nan`, `inf`, `1_000`, other
    scripts' digits, a finer amount, and a sign where none makes sense (only `credit` removes);
    and, given `in_range` (the service's check, imported only when the option is given), an
    amount out of its range (`credit 0`, a price past 1,000,000 USD). `clear_words` ("none")
    pass through as given."""

    name = "usd"

    def __init__(
        self,
        *,
        signed: bool = False,
        clear_words: tuple[str, ...] = (),
        in_range: Callable[[str], object] | None = None,
    ) -> None:
        self.signed = signed
        self.clear_words = clear_words
        self.in_range = in_range  # the service's own range check (InvalidRequest: refused)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text.lower() in self.clear_words:
            return text
        digits = text[1:] if self.signed and text[:1] in "+-" and text else text
        if not _PLAIN_DECIMAL.fullmatch(digits):
            self.fail(f"not a USD amount: {value[:40]!r}: {self._taken()}.", param, ctx)
        if self.in_range is not None:  # zero or past the most: the same usage error
            try:
                self.in_range(text)
            except InvalidRequest as exc:
                self.fail(exc.message, param, ctx)
        return text

    def _taken(self) -> str:
        """What the option takes, as its refusal says it."""
        if self.signed:
            return f"{_TAKEN}, '-' to remove ({_RULES})"
        return f"{_TAKEN} (no sign, {_RULES}){', or none' if self.clear_words else ''}"


def usd_shown(nanos: int | None) -> str | None:
    """nano-USD as plain exact text ('5.0' for a whole amount, as before; None stays None)."""
    if nanos is None:
        return None
    text = usd_text(nanos)
    return text if "." in text else f"{text}.0"


def user_amounts(user: Any, spent_nanos: int | None = None) -> dict[str, str | None]:
    """An account's balance and holds (and what it spent, when given) as the text shows them."""
    amounts = {
        "credit_balance_usd": usd_shown(user.balance_nanos),
        "held_usd": usd_shown(user.held_nanos),
    }
    if spent_nanos is not None:
        amounts["spent_usd"] = usd_shown(spent_nanos)
    return amounts


def key_amounts(key: Any) -> dict[str, str | None]:
    """An API key's spend in its period and its cap as the text shows them."""
    from codelace_box.accounts.limits import spent_in_period

    return {"spent_usd": usd_shown(spent_in_period(key)), "limit_usd": usd_shown(key.limit_nanos)}


def shown(view: dict[str, Any], user: Any, spent_nanos: int | None = None) -> dict[str, Any]:
    """A user view as a table shows it to a person: its amounts exact, the email's IDN domain
    in Unicode (accounts/users.py shown_email); `--json` keeps the stored ASCII form."""
    from codelace_box.accounts.users import shown_email

    return view | {"email": shown_email(view["email"])} | user_amounts(user, spent_nanos)


def key_rows(views: list[dict[str, Any]], keys: list[Any]) -> list[dict[str, Any]]:
    """Key views (`keys list`) as a table shows them: their amounts exact, a key past its
    expiry (refused, 401 key_expired) "expired <date>", as the dashboard reads it."""
    from codelace_box.db.core import utcnow

    now = utcnow()
    return [view | key_amounts(key) | _expired(view, key, now)
            for view, key in zip(views, keys, strict=True)]  # fmt: skip


def _expired(view: dict[str, Any], key: Any, now: Any) -> dict[str, str]:
    """The expiry cell of a key past its expiry; nothing for one that is not."""
    if key.expires_at is None or key.expires_at > now:
        return {}
    return {"expires_at": f"expired {view['expires_at']}"}


def key_lines(view: dict[str, Any], key: Any) -> str:
    """One key view (`keys update`) as 'field: value' lines, its amounts exact."""
    from codelace_box.cli.support import plain

    return "\n".join(f"{name}: {plain(value)}" for name, value in (view | key_amounts(key)).items())


def credit_in_range(text: str) -> None:
    """`credit`'s amount: non-zero and at most 1,000,000 USD either way (billing/credits.py)."""
    from codelace_box.billing.credits import adjustment_nanos

    adjustment_nanos(text)


def price_in_range(text: str) -> None:
    """A price: at most 1,000,000 USD per 1M tokens (catalog/models.py)."""
    from codelace_box.catalog.models import parse_price

    parse_price(text, "the price")
