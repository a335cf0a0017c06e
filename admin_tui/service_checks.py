"""Checks of what the operator typed, run before a feature function (or a confirmation) sees
it: part of the services door (imported only by admin_tui.services, which re-exports them)."""

from __future__ import annotations

from codelace_box.billing.credits import check_adjustment
from codelace_box.errors import InvalidRequest

__all__ = ["check_adjustment", "parse_token_cap"]


def parse_token_cap(text: str) -> int | None:
    """An optional whole number of tokens (its range is the catalog's to check)."""
    text = text.strip().replace("_", "").replace(",", "")
    if not text:
        return None
    if not text.isdigit():
        raise InvalidRequest(f"max output tokens must be a whole number, got {text!r}")
    return int(text)
