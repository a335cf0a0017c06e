"""`doctor`'s proof of the audit log: every entry's hash recomputed and its link to the entry
before it checked, in id order a page at a time (a log of millions of entries is one page in
memory), then the log compared with its head (how many entries were written, the newest's
hash): the chain alone does not show its newest entries removed.

An entry's states are stored as the canonical JSON its hash was taken over, so its hash is
first recomputed from the stored text as it is (no parsing); only an entry that does not
match that way is read as `audit` reads it and hashed as it always was (an older release's
text, or a changed entry: the verdict is the same as ever, only reached faster)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from codelace_box.audit.entry import Change, _body, _entry, entry_hash
from codelace_box.db.observability import AUDIT_PAGE, audit_head, audit_pages

_BODY = (
    '{{"after":{},"before":{},"client":{},"command":{},"created_at":{},"os_user":{},"target":{}}}'
)


def verify_chain(page: int | None = None) -> list[str]:
    """What is wrong with the chain (empty: every entry is intact and linked to the one
    before), one line per broken entry."""
    problems: list[str] = []
    prev, count = "", 0
    for rows in audit_pages("", None, page or AUDIT_PAGE):
        for row in rows:
            problems += _entry_problems(row, prev)
            prev = str(row[9])
        count += len(rows)
    written, newest = audit_head()
    if count != written:
        problems.append(
            f"audit log: {count} entries where {written} were written (entries were "
            "removed, the newest ones if the chain above holds)"
        )
    elif prev != newest:
        problems.append("audit log: its newest entry is not the one last written")
    return problems


def _entry_problems(row: tuple[Any, ...], prev: str) -> list[str]:
    """An entry's link to the one before (`prev`: its hash) and its own hash (db/observability
    AUDIT_COLUMNS: id, created_at, os_user, client, command, target, before, after, prev_hash,
    hash)."""
    problems = []
    if str(row[8]) != prev:
        problems.append(
            f"audit log entry {row[0]}: does not follow the entry before it "
            "(an entry was removed or changed)"
        )
    if not _hash_holds(row):
        problems.append(f"audit log entry {row[0]}: its content does not match its hash")
    return problems


def _hash_holds(row: tuple[Any, ...]) -> bool:
    """Whether the entry's hash is the one of its content: from the stored text, else read."""
    if entry_hash_of_text(row) == str(row[9]):
        return True
    entry = _entry(row)
    change = Change(entry.client, entry.command, entry.target, entry.before, entry.after)
    body = _body(entry.created_at, entry.os_user, change)
    return entry_hash(entry.prev_hash, body) == entry.hash


def entry_hash_of_text(row: tuple[Any, ...]) -> str:
    """`entry_hash` of a stored entry, its states taken as the JSON text stored (what
    `canonical` gives for the entry's body when that text is the canonical JSON written)."""
    states = ["null" if text is None else str(text) for text in (row[7], row[6])]
    words = [json.dumps(str(row[i]), ensure_ascii=False) for i in (3, 4, 1, 2, 5)]
    body = _BODY.format(*states, *words)  # canonical's order: the keys sorted
    return hashlib.sha256((str(row[8]) + body).encode()).hexdigest()
