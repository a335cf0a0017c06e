"""What an audit entry changed, field by field (the `audit` command's CHANGES column and the
dashboard's F6): a provider's keys by their hint and id, what each one changed, never a list's
Python or JSON text."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any

Shown = Callable[[Any], str]  # how a value is written (the CLI's and the dashboard's own way)


def field_changes(before: dict[str, Any], after: dict[str, Any], shown: Shown) -> list[str]:
    """`field: old -> new` for each field that differs; a provider's `keys` as key changes."""
    changed = [k for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)]
    words: list[str] = []
    for name in changed:
        old: Any = before.get(name)
        new: Any = after.get(name)
        if name == "keys" and _key_list(old) and _key_list(new):
            words.extend(key_changes(old, new, shown))
        else:
            words.append(f"{name}: {_words(name, old, shown)} -> {_words(name, new, shown)}")
    return words


def _words(name: str, value: Any, shown: Shown) -> str:
    """A value as the CHANGES column writes it: a list as comma-joined words ("none" when
    empty), never its Python or JSON text; a key's `allowed_models` is recorded as JSON text."""
    if name == "allowed_models" and isinstance(value, str) and value.startswith("["):
        with contextlib.suppress(ValueError):
            value = json.loads(value)
    if isinstance(value, list | tuple):
        return ", ".join(shown(item) for item in value) or "none"
    return shown(value)


def key_changes(
    before: list[dict[str, Any]], after: list[dict[str, Any]], shown: Shown
) -> list[str]:
    """A provider's keys that came, went or changed: `key 2 (sk-…3210) added`, `key 1
    (sk-…6789) enabled: True -> False`, `key 3 (sk-…0000) removed`."""
    old = {key.get("id"): key for key in before}
    new = {key.get("id"): key for key in after}
    words: list[str] = []
    for key_id in dict.fromkeys([*old, *new]):
        was, now = old.get(key_id), new.get(key_id)
        name = f"key {key_id} ({(now or was or {}).get('hint') or '…'})"
        if was is None:
            words.append(f"{name} added")
        elif now is None:
            words.append(f"{name} removed")
        else:
            fields = [k for k in sorted({*was, *now}) if k != "id"]
            words.extend(
                f"{name} {k}: {shown(was.get(k))} -> {shown(now.get(k))}"
                for k in fields
                if was.get(k) != now.get(k)
            )
    return words


def _key_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(key, dict) for key in value)
