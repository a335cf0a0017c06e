"""Metering: hold the worst case before the upstream call, settle the actual cost after."""

from __future__ import annotations

from codelace_box.db.core import write_transaction
from codelace_box.db.models import Hold, User


def release_orphaned_holds() -> int:
    """Release every open hold (run at start, before any request): a crash left them."""
    with write_transaction():
        released = Hold.delete().execute()
        User.update(held_nanos=0).where(User.held_nanos != 0).execute()
    return int(released)
