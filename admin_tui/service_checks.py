"""Checks of what the operator typed, run before a feature function (or a confirmation) sees
it: part of the services door (imported only by admin_tui.services, which re-exports them)."""

from __future__ import annotations

from typing import Any

from admin_tui.views import KeyLimitsForm
from codelace_box.billing.credits import check_adjustment
from codelace_box.errors import InvalidRequest

__all__ = ["check_adjustment", "key_limit_fields", "parse_token_cap", "user_limit_fields"]


def parse_token_cap(text: str) -> int | None:
    """An optional whole number of tokens (its range is the catalog's to check)."""
    text = text.strip().replace("_", "").replace(",", "")
    if not text:
        return None
    if not text.isdigit():
        raise InvalidRequest(f"max output tokens must be a whole number, got {text!r}")
    return int(text)


def key_limit_fields(form: KeyLimitsForm) -> dict[str, Any]:
    """A key limits form as the fields accounts.limits checks: every one given, blank clears."""
    return {
        "limit_usd": form.limit_usd.strip() or None,
        "limit_reset": None if form.limit_reset in ("", "never") else form.limit_reset,
        "expires_at": form.expires.strip() or None,
        "allowed_models": [m.strip() for m in form.models.split(",") if m.strip()] or None,
    }


def user_limit_fields(rpm: str, concurrent: str) -> dict[str, Any]:
    """An account limits form as fields (blank: the [limits] default)."""
    return {"rpm": rpm.strip() or None, "max_concurrent": concurrent.strip() or None}
