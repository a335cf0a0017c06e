"""An account's request limits as `users show` gives them: the value in effect (its own, else
the `[limits]` default; 0: unlimited) and, in the text, where it comes from."""

from __future__ import annotations

from typing import Any

from codelace_box.accounts.limits import effective

LIMITS = ("rpm", "max_concurrent")  # the account's fields, as the [limits] keys name them


def limits_in_effect(user: Any, defaults: Any) -> dict[str, int]:
    """`--json`'s added fields: `rpm_effective`, `max_concurrent_effective` (0: unlimited)."""
    return {
        f"{name}_effective": effective(getattr(user, name), getattr(defaults, name))
        for name in LIMITS
    }


def limits_text(user: Any, defaults: Any) -> dict[str, str]:
    """The text's lines: '60', 'unlimited', '60 (default)' where the default applies."""
    lines = {}
    for name in LIMITS:
        value = effective(getattr(user, name), getattr(defaults, name))
        text = "unlimited" if value == 0 else str(value)
        lines[name] = text if getattr(user, name) is not None else f"{text} (default)"
    return lines
