"""Group commit: the writes queued during one event-loop turn share one IMMEDIATE transaction.

Under load many requests admit or settle at the same moment. Their writes run together
inside one BEGIN IMMEDIATE ... COMMIT: the commit, and the pages every write dirties (the
user row, the rightmost index leaves), are paid once per batch instead of once per request.
A batch runs first without savepoints. A write given as steps (a generator: admission and
settlement) yields once it sent what it will read, and the batch runs the writes' steps in
turns (`turns.run_interleaved`). A write reads before it yields what later writes must see done
(db/hotpath.py `Later`); one that finds it has more of that to write after its yield says so
(ALONE). Any write that fails (a refusal; on PostgreSQL also a server error that may be an
earlier write's) makes the batch run again `careful`: each write in its own SAVEPOINT,
waiting for its own answers before the next begins, so it commits or fails alone; the next
CAREFUL_BATCHES batches start careful too (a client refused again and again costs no rerun
each time). A batch of one write runs without a savepoint either way: it is the transaction.
A write is a function of the transaction alone; what it counts in the metrics waits for the
COMMIT (`metrics.counted_on_commit`, one list per run of a batch; a write that fails alone
drops its part), so a write run twice is counted once.

The flush is a plain callback: nothing awaits inside the transaction, and a request that is
cancelled while waiting still has its write committed (its future is simply not told). A
caller awaits its own result; the result exists only after the COMMIT. The transaction and
the savepoints are `write_transaction()`'s, the one way to write (db/core.py).

On PostgreSQL the batch's transaction runs on the write thread (db/offload.py) instead of the
loop: one batch at a time, the writes queued meanwhile make the next one (a batch grows with
the server's latency instead of the loop waiting for it). The thread drains the queue itself,
batch after batch, so it never waits for the loop between two; the futures are resolved on
the loop.
There the batch is also:
- pipelined (postgres.PgTx): a statement waits for its answer only when the write reads it,
  so a write costs a round trip per answer read, not per statement; the writes' steps in
  turns share their round trips: a batch of 40 requests' writes costs a few, not 40.
- one batch of any box at a time (a transaction advisory lock, BATCH_LOCK, first): two boxes'
  batches would otherwise take the same user, key and total rows in opposite orders and
  deadlock (PostgreSQL then aborts one after a second's wait);
- run again when PostgreSQL aborts it anyway (a deadlock or a serialization failure with
  another transaction: an operator's credit, a sweep), up to ATTEMPTS runs;
- run once more when its one write failed at once on a session the server had dropped (an
  idle cut, a restart): that failure came before its COMMIT, so nothing of it was written.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar, overload

from codelace_box import metrics
from codelace_box.db.core import (
    POSTGRES,
    Savepoint,
    Tx,
    database,
    engine,
    exclusive,
    pipelined,
    sync,
    write_transaction,
)
from codelace_box.db.failures import conflict, database_unavailable, is_busy, is_unavailable
from codelace_box.db.offload import found_unreachable, write_thread
from codelace_box.db.sqlite_file import write_failure_where
from codelace_box.db.turns import (
    Outcome,
    Pending,
    RunAgain,
    Steps,
    Write,
    run_interleaved,
    run_whole,
)

T = TypeVar("T")
log = logging.getLogger("codelace_box.gateway")
ATTEMPTS = 3  # runs of a batch that PostgreSQL keeps aborting for other boxes' sake
CONFLICT_PAUSE_SEC = 0.02  # at most, before such a run (the write thread's)
BATCH_LOCK = "codelace:group-commit"  # PostgreSQL: one batch of any box at a time
CAREFUL_BATCHES = 50  # batches run careful after one had to run again


class WriteBatch:
    """Queue writes; they run together at the end of the current loop turn."""

    __slots__ = ("_drained", "_in_flight", "_lock", "_pending", "_scheduled", "careful_left")

    def __init__(self) -> None:
        self._pending: Pending = []
        self._scheduled = False
        self._in_flight = False  # the write thread is draining (PostgreSQL)
        self._lock = threading.Lock()  # `_in_flight` and the hand-over of `_pending`
        self._drained: asyncio.Future[None] | None = None  # the write thread's current drain
        self.careful_left = 0  # batches still to run careful, after one had to run again

    @overload
    def submit(self, write: Callable[[Tx], Steps[T]]) -> asyncio.Future[T]: ...
    @overload
    def submit(self, write: Callable[[Tx], T]) -> asyncio.Future[T]: ...
    def submit(self, write: Callable[[Tx], Any]) -> asyncio.Future[Any]:
        """Queue a write (or its steps); the future resolves (or raises) once its batch
        committed, with what the write returned."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((write, future))
        if not self._scheduled:
            self._scheduled = True
            # a batch is every request's: its lines name none (logformat.REQUEST_ID)
            loop.call_soon(self.flush, context=contextvars.Context())
        return future

    def submit_detached(self, write: Write) -> None:
        """Queue a write nobody waits for (e.g. from a cancelled request); failures are logged."""
        self.submit(write).add_done_callback(_log_failure)

    def flush(self) -> None:
        """Run every queued write in one transaction and resolve their futures (PostgreSQL:
        the write thread drains them, batch after batch, the futures resolved on the loop)."""
        self._scheduled = False
        if not self._pending:
            return
        thread = write_thread()
        if thread is None:
            pending, self._pending = self._pending, []
            _resolve(_commit(pending, self))
            return
        with self._lock:
            if self._in_flight:
                return  # the write thread takes them as its next batch
            self._in_flight = True
        loop = asyncio.get_running_loop()
        drained = asyncio.ensure_future(thread.run(self._drain, loop))
        drained.add_done_callback(self._stopped)
        self._drained = drained

    def _drain(self, loop: asyncio.AbstractEventLoop) -> None:
        """On the write thread: commit what is queued, batch after batch, until nothing is
        (the writes queued while one commits make the next: no wait for the loop between
        batches); each batch's futures are resolved on the loop."""
        while True:
            with self._lock:
                pending, self._pending = self._pending, []
                if not pending:
                    self._in_flight = False
                    return
            try:
                outcomes = _commit(pending, self)
            except BaseException as exc:  # not one of _commit's own: still tell the callers
                loop.call_soon_threadsafe(_resolve, _failed(pending, exc))
                raise
            loop.call_soon_threadsafe(_resolve, outcomes)

    def _stopped(self, drained: asyncio.Future[None]) -> None:
        """A drain ended: one that could not run (the write thread stopped) or broke off fails
        what is still queued; a write queued as it ended starts the next."""
        failed = drained.cancelled() or drained.exception() is not None
        if failed:
            with self._lock:
                self._in_flight = False
                pending, self._pending = self._pending, []
            error = drained.exception() if not drained.cancelled() else None
            _resolve(_failed(pending, error or RuntimeError("the write thread stopped")))
        elif self._pending and not self._scheduled:
            self.flush()

    async def written(self) -> None:
        """Flush, and return once every queued write is committed (before a worker stops)."""
        while self._pending or self._in_flight:
            self.flush()
            drained = self._drained
            if drained is not None and not drained.done():
                await asyncio.wait([drained])
            await asyncio.sleep(0)  # the outcomes' callbacks run


def _commit(pending: Pending, batch: WriteBatch) -> list[Outcome]:
    """Every write of a batch in one transaction; what each gave. A batch in turns where a
    write failed runs again careful; one another box's transaction made PostgreSQL abort runs
    again (ATTEMPTS in all). (Touches no future: it may run on the write thread.)"""
    careful, conflicts, redone = _start_careful(batch), 0, False
    while True:
        had_session, began = _has_session(), time.monotonic()
        try:
            outcomes, counted = _attempt(pending, careful)
        except _Alone as alone:  # the batch's one write failed: its outcome, nothing written
            if not redone and _session_dropped(alone.error, had_session, began):
                redone = True  # failed before its COMMIT: once more, on a new session
                continue
            return [(pending[0][1], None, _unavailable(alone.error))]
        except Exception as exc:  # nothing of this attempt was written
            if conflict(exc) and conflicts < ATTEMPTS - 1:
                conflicts += 1
                log.warning("a batch of %d writes runs again: %s", len(pending), exc)
                time.sleep(random.uniform(0, CONFLICT_PAUSE_SEC))  # the other one finishes
                continue
            if not careful and _blamed_on_a_write(exc):
                careful = _stay_careful(batch)
                continue
            where = write_failure_where(exc)  # SQLite's file, its disk: the failure's path only
            log.error("a batch of %d writes failed: %s%s", len(pending), exc, where)
            return _failed(pending, exc)
        metrics.count(counted)  # committed: what its writes counted, once
        return outcomes


def _has_session() -> bool:
    """Whether this thread holds a PostgreSQL session (which the server may have dropped)."""
    return engine() == POSTGRES and database.obj is not None and not database.is_closed()


def _session_dropped(exc: Exception, had_session: bool, began: float) -> bool:
    """Whether a write failed at once for its session, one the server had dropped (an idle
    cut, a restart between two batches; the next use opens a new one), rather than finding
    the server unreachable (which a new session would only wait for again)."""
    return (
        had_session and not found_unreachable(exc, time.monotonic() - began) and is_unavailable(exc)
    )


def _start_careful(batch: WriteBatch) -> bool:
    """Whether this batch starts careful: for a while after a batch had to run again (so a
    client refused again and again costs no rerun each time)."""
    if batch.careful_left:
        batch.careful_left -= 1
        return True
    return False


def _stay_careful(batch: WriteBatch) -> bool:
    """A batch runs again carefully: so do the next CAREFUL_BATCHES."""
    batch.careful_left = CAREFUL_BATCHES
    return True


def _blamed_on_a_write(exc: Exception) -> bool:
    """Whether a batch run in turns failed for a write's sake (then it runs again careful, each
    write in its savepoint): a write's own error; on PostgreSQL also any error but a conflict
    (a pipelined statement's error may surface at a later write's wait, or at COMMIT; with
    the write thread or without). SQLite's other errors (a database locked past its busy
    timeout) fail the batch as they are: running it again would only wait again."""
    return isinstance(exc, RunAgain) or (engine() == POSTGRES and not conflict(exc))


def _attempt(pending: Pending, careful: bool) -> tuple[list[Outcome], list[metrics.Increment]]:
    """One run of the batch, after the lock that makes the batches of every box take their
    turns (PostgreSQL: so they never take the same rows in opposite orders): what each write
    gave, and what they counted in the metrics (to count once the COMMIT is answered; a write
    that failed alone counted nothing)."""
    if engine() == POSTGRES:  # SQLite has no pipeline mode: no context to enter and leave
        with pipelined():
            return _attempt_in(pending, careful)
    return _attempt_in(pending, careful)


def _attempt_in(pending: Pending, careful: bool) -> tuple[list[Outcome], list[metrics.Increment]]:
    outcomes: list[Outcome] = []
    counted: list[metrics.Increment] = []
    transaction = write_transaction(kept_cursor=True)  # its writes: core.Statements
    with transaction as tx, metrics.counted_on_commit(counted):
        exclusive(tx, BATCH_LOCK)
        if len(pending) == 1:
            return [_run_alone(tx, *pending[0])], counted
        if not careful:
            return run_interleaved(tx, pending), counted
        for write, future in pending:
            value, error = _run_one(tx, write, counted)
            outcomes.append((future, value, error))
    return outcomes, counted


def _failed(pending: Pending, exc: BaseException) -> list[Outcome]:
    """The whole batch failed with `exc` (a busy database: a 503)."""
    failure = _unavailable(exc) if isinstance(exc, Exception) else exc
    return [(future, None, failure) for _, future in pending]


def _resolve(outcomes: list[Outcome]) -> None:
    """Tell each waiting caller its write's result (or error); on the loop."""
    for future, value, error in outcomes:
        if future.done():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)


def _run_alone(tx: Tx, write: Write, future: asyncio.Future[Any]) -> Outcome:
    """The one write of a batch (every batch of a quiet box), without a savepoint: it is the
    transaction, so its error rolls the whole of it back (`_Alone`; a conflict as it was), and
    two statements a write fewer."""
    try:
        value = run_whole(write, tx)
        sync(tx)  # pipelined: its statements' errors are raised here
    except Exception as exc:
        if conflict(exc):
            raise
        raise _Alone(exc) from exc
    return future, value, None


class _Alone(Exception):
    """The one write of a batch failed (the transaction rolls back with it)."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def _run_one(tx: Tx, write: Write, counted: list[metrics.Increment]) -> tuple[Any, Any]:
    """One write in its own savepoint, waiting for its answers: it fails alone (its value or
    error; what it counted in the metrics is dropped with its savepoint). A conflict aborts
    the whole batch."""
    mark = len(counted)
    try:
        with Savepoint(tx):
            try:
                value = run_whole(write, tx)
                sync(tx)  # pipelined: its statements' errors are raised here, as its own
            except Exception as exc:
                _answered(tx, exc)
                raise
        return value, None
    except Exception as exc:
        if conflict(exc):
            raise
        del counted[mark:]
        return None, _unavailable(exc)


def _answered(tx: Tx, exc: Exception) -> None:
    """A write failed: wait for its queued answers before its savepoint rolls back (after a
    server error the server skips what follows until then)."""
    try:
        sync(tx)
    except Exception as late:  # its own error, or what the server skipped after it
        if conflict(late) and not conflict(exc):
            raise late from exc


def _unavailable(exc: Exception) -> Exception:
    """A locked or unreachable database is a 503 for the client, not an internal error."""
    if is_busy(exc) or is_unavailable(exc):
        return database_unavailable(exc)
    return exc


def _log_failure(future: asyncio.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("a detached write failed", exc_info=future.exception())
