"""Checks of what the operator typed, run before a feature function (or a confirmation) sees
it: part of the services door (imported only by admin_tui.services, which re-exports them)."""

from __future__ import annotations

from typing import Any

from admin_tui.views import KeyLimitsForm, KeyRow
from codelace_box.accounts.limits import CLEAR_WORDS, MODELS_REFUSED, MODELS_REFUSED_WORDS
from codelace_box.billing.credits import check_adjustment
from codelace_box.catalog.models import parse_price
from codelace_box.db.core import MAX_SQLITE_INTEGER
from codelace_box.errors import Conflict, InvalidRequest
from codelace_box.money import typed_usd, ungrouped, usd_text

__all__ = [
    "PRICE_JUMP",
    "check_adjustment",
    "key_limit_fields",
    "manage_keys_choice",
    "parse_token_cap",
    "price_jumps",
    "unchanged",
    "user_limit_fields",
]
PRICE_JUMP = 10  # a price changed by more than this factor (up or down) is asked about


def price_jumps(changes: dict[str, tuple[int, str]]) -> list[str]:
    """The prices (by label: current nano-USD, new text) that change by more than PRICE_JUMP
    times, described for a confirmation; a new price that does not parse is left to the save."""
    jumps = []
    for label, (old, text) in changes.items():
        try:
            new = parse_price(text.strip(), label)
        except InvalidRequest:
            continue
        low, high = sorted((old, new))
        if high > low * PRICE_JUMP:
            jumps.append(f"{label}: {usd_text(old)} -> {usd_text(new)} USD per 1M tokens")  # exact
    return jumps


def parse_token_cap(text: str, what: str = "max output tokens") -> int | None:
    """An optional whole number of tokens (its range is the catalog's to check); blank or
    `none` (as `models set ... none`): unset."""
    text = text.strip().replace("_", "").replace(",", "")
    if not text or text.lower() == "none":
        return None
    if not (text.isascii() and text.isdigit()):  # "²" is a digit int() cannot read
        raise InvalidRequest(f"{what} must be a whole number, got {text!r}")
    if len(text.lstrip("0")) > len(str(MAX_SQLITE_INTEGER)):  # int() fails past 4300 digits
        raise InvalidRequest(f"{what} must be at most {MAX_SQLITE_INTEGER}")  # as the catalog
    return int(text)


def key_limit_fields(form: KeyLimitsForm, shown: KeyRow | None = None) -> dict[str, Any]:
    """A key limits form as the fields accounts.limits checks: every one given, blank (or a
    word `keys update` clears with: none, null, never, all) clears; the expiry and the models
    as `shown` are left out (unchanged), so an expired key's cap can change, and a key's whose
    models were removed from the catalog meanwhile; the name only when changed. For the
    models 'none' and 'never' are refused (read as "no model"), as by `keys update`."""
    if form.models.strip().lower() in MODELS_REFUSED_WORDS:
        raise InvalidRequest(f"allowed models: {form.models.strip()!r} {MODELS_REFUSED}")
    models = _cleared(form.models)
    fields: dict[str, Any] = {
        "limit_usd": _cleared(typed_usd(form.limit_usd)),  # "1,000" read as the portal does
        "limit_reset": None if form.limit_reset in ("", "never") else form.limit_reset,
        "expires_at": _cleared(form.expires),
        "allowed_models": [m.strip() for m in (models or "").split(",") if m.strip()] or None,
        "can_manage_keys": manage_keys_choice(form.manage_keys),
    }
    if shown is not None and form.expires.strip() == moment_text(shown):
        del fields["expires_at"]
    allowed = fields["allowed_models"]
    if shown is not None and (None if allowed is None else tuple(allowed)) == shown.allowed_models:
        del fields["allowed_models"]
    if form.name is not None and (shown is None or form.name.strip() != shown.name):
        fields["name"] = form.name.strip()
    return fields


def _cleared(text: str) -> str | None:
    """A limit field's text, or None (no limit) when blank or a word that clears it."""
    text = text.strip()
    return None if not text or text.lower() in CLEAR_WORDS else text


def moment_text(key: KeyRow) -> str:
    """A key's expiry as the form shows it (ISO 8601, UTC), exactly as stored: the form sends
    it back, and a save that changes only the cap must not move the expiry (a "30d" one has
    microseconds)."""
    expires = key.expires_at
    if expires is None:
        return ""
    return expires.isoformat(timespec="microseconds" if expires.microsecond else "seconds") + "Z"


def manage_keys_choice(text: str) -> Any:
    """The form's yes/no as the boolean accounts.limits takes (other text is passed on, to be
    refused there naming the field)."""
    return {"yes": True, "no": False}.get(text.strip().lower(), text)


def user_limit_fields(rpm: str, concurrent: str) -> dict[str, Any]:
    """An account limits form as fields (blank: the [limits] default; "1,000" is 1000, as
    the dashboard writes it)."""
    return {"rpm": ungrouped(rpm) or None, "max_concurrent": ungrouped(concurrent) or None}


def unchanged(shown: object, current: object, what: str) -> None:
    """Refuse a form's save when what it was filled with is no longer what is stored: another
    admin (the CLI, a second dashboard) changed it meanwhile, and saving would put back the
    old values of the fields the operator did not touch."""
    if shown != current:
        raise Conflict(
            f"{what} changed meanwhile (the CLI or another dashboard): nothing was saved; "
            "close the form (Esc) and open it again to see what is stored now",
            code="changed_meanwhile",
        )
