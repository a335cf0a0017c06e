"""One config key's declaration: its default, its one-line doc and the rules its value must
follow, kept in the dataclass field's metadata (read by loading, the example and the docs)."""

from __future__ import annotations

from dataclasses import field
from typing import Any


def opt(
    default: Any,
    doc: str,
    choices: tuple[str, ...] = (),
    minimum: float | None = None,
    maximum: float | None = None,
    pattern: tuple[str, str] | None = None,
) -> Any:
    """A config field: its default, its one-line doc and the rules its value must follow."""
    meta = {"doc": doc, "choices": choices, "minimum": minimum, "maximum": maximum}
    meta["pattern"] = pattern
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)
