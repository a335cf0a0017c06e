"""Public ids: users, API keys and payments are shown as UUID4 strings (their `uuid` column).

The integer primary keys stay internal (foreign keys, the request path); only the UUIDs leave
the box, in the HTTP API, the CLI and the dashboard.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from codelace_box.errors import Conflict

_CANONICAL = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_PREFIX = re.compile(r"[0-9a-f][0-9a-f-]*")
UUID_LENGTH = 36
MAX_SHOWN_MATCHES = 5  # rows an ambiguous id prefix names
OLD_ID_DIGITS = 8  # all-digit ids shorter than this are the integer ids of before (migration 3)


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


def one_by_prefix(
    query: Any, prefix: str, what: str, code: str, old_id: Exception | None = None
) -> Any | None:
    """The one row of `query` (the rows whose uuid starts with `prefix`), or None if there is
    none; several: a 409 `code` that names the first few ("`what` prefix ... is ambiguous").
    `old_id` is raised when the prefix is an old integer id naming another row (see below)."""
    found = list(query.order_by(query.model.uuid).limit(MAX_SHOWN_MATCHES + 1))
    if old_id is not None and _an_old_id_of_another_row(query.model, prefix, found):
        raise old_id
    if len(found) > 1:
        shown = ", ".join(row.uuid for row in found[:MAX_SHOWN_MATCHES])
        more = ", ..." if len(found) > MAX_SHOWN_MATCHES else ""
        raise Conflict(
            f"{what} prefix {prefix!r} is ambiguous: it matches {shown}{more}; give more of it",
            code=code,
        )
    return found[0] if found else None


def _an_old_id_of_another_row(model: Any, prefix: str, found: list[Any]) -> bool:
    """Whether a short all-digit id the operator typed is, as an integer id of before UUIDs
    (`users disable 3`), a row of the table other than the one row the prefix names: taken as a
    prefix it would act on another row than the old id meant. Other digits are a prefix, and
    so is one with a leading zero (`07`): no old id was ever written so."""
    if not (prefix.isdigit() and len(prefix) < OLD_ID_DIGITS) or prefix.startswith("0"):
        return False
    row_id = int(prefix)
    if len(found) == 1 and found[0].id == row_id:
        return False  # the same row both ways
    return bool(model.select(model.id).where(model.id == row_id).exists())
