"""Group commit: the writes queued during one event-loop turn share one IMMEDIATE transaction.

Under load many requests admit or settle at the same moment. Each queued write runs in its
own SAVEPOINT (so it commits or rolls back as a unit, and one failing write does not touch
the others), all of them inside one BEGIN IMMEDIATE ... COMMIT: the commit, and the pages every
write dirties (the user row, the rightmost index leaves), are paid once per batch instead of
once per request. The flush is a plain callback: nothing awaits inside the transaction, and
a request that is cancelled while waiting still has its write committed (its future is simply
not told). A caller awaits its own result; the result exists only after the COMMIT. The
transaction and the savepoints are `write_transaction()`'s, the one way to write (db/core.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from codelace_box.db.core import Savepoint, Tx, is_busy, write_transaction
from codelace_box.errors import ServiceUnavailable

T = TypeVar("T")
log = logging.getLogger("codelace_box.gateway")
Write = Callable[[Tx], Any]  # runs statements in the open transaction, returns a value


class WriteBatch:
    """Queue writes; they run together at the end of the current loop turn."""

    __slots__ = ("_pending", "_scheduled")

    def __init__(self) -> None:
        self._pending: list[tuple[Write, asyncio.Future[Any]]] = []
        self._scheduled = False

    def submit(self, write: Callable[[Tx], T]) -> asyncio.Future[T]:
        """Queue a write; the future resolves (or raises) once its batch committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._pending.append((write, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self.flush)
        return future

    def submit_detached(self, write: Write) -> None:
        """Queue a write nobody waits for (e.g. from a cancelled request); failures are logged."""
        self.submit(write).add_done_callback(_log_failure)

    def flush(self) -> None:
        """Run every queued write in one transaction and resolve their futures."""
        pending, self._pending = self._pending, []
        self._scheduled = False
        if not pending:
            return
        outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        try:
            with write_transaction() as tx:
                for write, future in pending:
                    outcomes.append((future, *_run_one(tx, write)))
        except Exception as exc:  # BEGIN or COMMIT failed: nothing of this batch was written
            log.error("a batch of %d writes failed: %s", len(pending), exc)
            failure = _unavailable(exc)
            outcomes = [(future, None, failure) for _, future in pending]
        for future, value, error in outcomes:
            if future.done():
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(value)


def _run_one(tx: Tx, write: Write) -> tuple[Any, BaseException | None]:
    """One write in its own savepoint: it fails alone."""
    try:
        with Savepoint(tx):
            return write(tx), None
    except Exception as exc:
        return None, exc


def _unavailable(exc: Exception) -> Exception:
    """A locked or failing database is a 503 for the client, not an internal error."""
    if is_busy(exc):
        return ServiceUnavailable("the database is busy; retry shortly", code="database_busy")
    return exc


def _log_failure(future: asyncio.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("a detached write failed", exc_info=future.exception())
