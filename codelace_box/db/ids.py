"""Public ids: users, API keys and payments are shown as UUID4 strings (their `uuid` column).

The integer primary keys stay internal (foreign keys, the request path); only the UUIDs leave
the box, in the HTTP API, the CLI and the dashboard.
"""

from __future__ import annotations

import re
import uuid

_CANONICAL = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_PREFIX = re.compile(r"[0-9a-f][0-9a-f-]*")
UUID_LENGTH = 36


def new_uuid() -> str:
    """A fresh UUID4 in its canonical lowercase text form."""
    return str(uuid.uuid4())


def canonical_uuid(text: object) -> str | None:
    """`text` as a canonical (lowercase, hyphenated) UUID, or None if it is not one."""
    if not isinstance(text, str) or len(text) != UUID_LENGTH:
        return None
    lowered = text.lower()
    return lowered if _CANONICAL.fullmatch(lowered) else None


def uuid_prefix(text: str) -> str | None:
    """`text` as the lowercase start of a canonical UUID, or None if no UUID can start so."""
    lowered = text.strip().lower()
    if not 0 < len(lowered) <= UUID_LENGTH or not _PREFIX.fullmatch(lowered):
        return None
    return lowered
