"""The dashboard's door to the audit log: its changes recorded as client "admin", and the log
read back for the audit screen (part of the services door, imported by admin_tui.services)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

from codelace_box import audit
from codelace_box.audit import Entry, states
from codelace_box.audit.changes import field_changes
from codelace_box.reports.refusals import RefusalCount, refusal_counts

__all__ = [
    "Entry",
    "RefusalCount",
    "audited",
    "entries",
    "field_changes",
    "provider_key_change",
    "refusal_counts",
    "states",
]


def audited(
    command: str, target: str, state: Callable[[], audit.State] | None = None
) -> AbstractContextManager[audit.Change]:
    """A change made from the dashboard, with its audit entry in its transaction."""
    return audit.admin_change("admin", command, target, state)


@contextmanager
def provider_key_change(verb: str, key_id: int) -> Iterator[audit.Change]:
    """A change of one provider key (`providers key-<verb>`), recorded on its provider."""
    with audited(f"providers key-{verb}", str(key_id)) as change:
        change.target = owner = states.provider_of_key(key_id) or str(key_id)
        change.before = states.provider(owner)
        yield change
        change.set_after(states.provider(owner))


def entries(limit: int) -> list[Entry]:
    """The newest `limit` entries of the audit log, oldest first."""
    return audit.list_entries(limit=limit)
