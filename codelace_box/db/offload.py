"""The one way to keep database work off the event loop: a dedicated database thread.

Each server process starts one `DbThread` (server.py, before it serves) and stops it after
(closing the thread's connection). `await run_in_db_thread(fn, *args, **kwargs)` runs `fn` on
that thread and hands back its result (or raises its exception) on the loop, which meanwhile
serves every other request. Use it for every read whose cost grows with history (a user's
usage list, the reports, a search) and for background writes (retention).

Connections: peewee keeps a connection per thread (`Database._state` is thread-local), so the
thread opens its own connection to the same database on first use, with the same settings
(`open_database()`'s pragmas and busy timeout), and closes it when stopped. Nothing opened on
the loop's thread is ever used from the database thread or the other way round: a function
sent here must not take a `Tx` or a model instance bound to a transaction of the loop's thread.

Engine neutrality: nothing here knows SQLite. Work runs one item at a time, in order (one
thread, one connection): a write transaction begun here never interleaves with another
begun here; transactions of the loop's thread run on its own connection and the engine's
locking orders the two (SQLite: the busy timeout; PostgreSQL: row locks). An engine whose
driver releases the GIL while it waits (apsw, psycopg) lets the loop run meanwhile.

Requests' own database work (`run_db_work`: an account's keys, a sign-in, a portal session)
goes to work threads of its own on PostgreSQL (`WORK_THREADS`, each item to the least busy),
where the event loop would wait for the server's round trips, or for a host that stopped
answering up to its timeouts (db/postgres.py NETWORK_DEFAULTS); on SQLite it stays where it
is, a local call of microseconds. Not to the database thread: there a read that grows with
history (a usage page of an account whose rows are older than a million others' reads them
all on PostgreSQL: 0.2 s) held every sign-in and key creation of the worker queued behind it.
Not to one thread either: a call waiting for a row lock (another box's transaction on the
account's row, up to the 10 s lock timeout) held every call queued behind it. Work that
waited on a thread while an earlier item spent seconds finding the server unreachable fails with it
(503 `database_unavailable`) instead of each spending as long again in turn: with a silent
host, a queue of N requests would otherwise wait N connect timeouts. A work thread's session
that the server ended while it was idle (an idle cut, a restart) is closed before the next
item, seen without a round trip, so that item opens a new one instead of failing with it.

The write thread (PostgreSQL only): a second `DbThread` of its own connection on which the
group commit (db/batch.py) runs the hot path's transactions (admit, settle), so the loop never
waits for the server's round trips and a batch does not queue behind a long read. SQLite's
writes stay on the loop: they are local calls of microseconds, and there is one writer anyway.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import ParamSpec, TypeVar

from codelace_box.db import postgres
from codelace_box.db.core import POSTGRES, close_database, database, engine
from codelace_box.db.failures import is_unavailable, unavailable_error

P = ParamSpec("P")
T = TypeVar("T")
log = logging.getLogger("codelace_box.db")
UNREACHABLE_AFTER_SEC = 1.0  # an item that failed unavailable after this long: a silent server


def found_unreachable(exc: BaseException, took_sec: float) -> bool:
    """Whether work that failed with `exc` after `took_sec` found the server unreachable
    (not merely a session it had dropped, which fails at once and reconnects at next use)."""
    return took_sec >= UNREACHABLE_AFTER_SEC and is_unavailable(exc)


def again_if_dropped(work: Callable[[], T]) -> T:
    """`work()`, run once more when it failed at once on a session the server had dropped (an
    idle cut, a restart: the next use opens a new one, PostgreSQL's driver); not when it
    could not open one, nor when it failed slowly (`found_unreachable`: a host that does not
    answer, its timeouts are waited for once). Only for work that may run twice (reads,
    idempotent writes)."""
    had_session = database.obj is not None and not database.is_closed()
    began = time.monotonic()
    try:
        return work()
    except Exception as exc:
        if not had_session or not is_unavailable(exc):
            raise
        if found_unreachable(exc, time.monotonic() - began):
            raise
    return work()


class DbThread:
    """One thread, its own database connection, work run one item at a time in order.

    `fail_together`: an item awaited with `run` that was queued while an earlier one spent at
    least UNREACHABLE_AFTER_SEC failing to reach the server (and nothing reached it since)
    fails at once with a 503, without trying again."""

    def __init__(self, name: str = "codelace-db", fail_together: bool = False) -> None:
        self._executor: ThreadPoolExecutor | None = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=name
        )
        self._fail_together = fail_together
        self._unreachable_at = float("-inf")  # monotonic; both only read and set on the thread
        self._reached_at = float("-inf")

    @property
    def running(self) -> bool:
        """True until `stop()`."""
        return self._executor is not None

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `fn(*args, **kwargs)` on the thread; its result, or its exception, here."""
        executor = self._executor
        if executor is None:
            raise RuntimeError("the database thread is stopped")
        loop = asyncio.get_running_loop()
        # in the caller's context (as asyncio.to_thread): a line logged there names its request
        work = partial(contextvars.copy_context().run, fn, *args, **kwargs)
        if self._fail_together:
            work = partial(self._together, time.monotonic(), work)
        return await loop.run_in_executor(executor, work)

    def _together(self, queued: float, work: Callable[[], T]) -> T:
        """On the thread: `work()`, unless the server was found unreachable while it waited
        (and nothing reached it since): then the 503 that attempt ended in, at once."""
        if queued < self._unreachable_at and self._reached_at < self._unreachable_at:
            raise unavailable_error()
        began = time.monotonic()
        try:
            result = work()
        except Exception as exc:
            ended = time.monotonic()
            if not is_unavailable(exc):
                self._reached_at = ended  # the server answered (with an error of the work's)
            elif found_unreachable(exc, ended - began):
                self._unreachable_at = ended
            raise
        self._reached_at = time.monotonic()
        return result

    def start(self, fn: Callable[P, None], *args: P.args, **kwargs: P.kwargs) -> None:
        """Queue `fn(*args, **kwargs)` on the thread without waiting for it (it hands its
        results back itself); an exception it raises is logged."""
        if self._executor is None:
            raise RuntimeError("the database thread is stopped")
        self._executor.submit(partial(fn, *args, **kwargs)).add_done_callback(_log_failure)

    def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `fn` on the thread and wait for it (from a thread with no event loop)."""
        if self._executor is None:
            raise RuntimeError("the database thread is stopped")
        return self._executor.submit(partial(fn, *args, **kwargs)).result()

    def stop(self) -> None:
        """Finish the queued work, close the thread's connection, end the thread."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        try:
            executor.submit(close_database).result()
        except Exception:  # the connection may be gone with the database already
            log.debug("closing the database thread's connection failed", exc_info=True)
        executor.shutdown(wait=True)


WORK_THREADS = 4  # PostgreSQL: threads (and sessions, opened on first use) for requests' work


class WorkThreads:
    """A few `DbThread`s, each with its own session; an item goes to the one with the fewest
    items in hand, so a call waiting for a row lock (up to the lock timeout) holds back only
    the calls that found every thread busy, not all the worker's calls queued behind it.

    When the server has fewer sessions to give than there are threads (`max_connections`, a
    role's CONNECTION LIMIT): a thread the server refused a session is not picked while
    another has one (it would refuse again: a 503) for `retry_refused_sec` (then it is tried
    again: after a restart or a short shortage the server may give it one, and a refusal
    costs the item nothing, see below), ties go to a thread with a live session,
    then in turn; and an item that could not open its thread's session (nothing of it ran) runs
    on a thread with a live session instead, when there is one. A thread that opens a session
    after refusals (an outage over: the database is back) puts the others back at once. The
    first refusal is one line of the log, and the first session opened after it one more."""

    def __init__(self, count: int, name: str, retry_refused_sec: float = 30.0) -> None:
        self._retry_refused_sec = retry_refused_sec
        self._threads = [DbThread(f"{name}-{n}", fail_together=True) for n in range(count)]
        self._in_hand = [0] * count  # items sent to each thread and not yet answered
        # each thread's session as its last item left it (set on the thread, read here)
        self._live = [False] * count
        # when its last attempt to open one was refused (monotonic; -inf: it was not)
        self._refused_at = [float("-inf")] * count
        self._turn = 0  # where the next tie is broken from
        self._refusing = Refusals()

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `fn(*args, **kwargs)` on the least busy thread (on a new session if the server
        ended its own while it was idle); its result, or its exception."""
        work = partial(fn, *args, **kwargs)
        refused: list[bool] = []  # this item's thread was refused a session (set on it)
        try:
            return await self._run_on(self._pick(), work, refused)
        except Exception:
            if not refused or not any(self._live):
                raise
            # nothing of the work ran: on a thread that has a session
            return await self._run_on(self._pick(live_only=True), work, [])

    def _pick(self, live_only: bool = False) -> int:
        """The thread for the next item: not one refused a session while another has one, the
        fewest items in hand, a live session, then the next in turn (`live_only`: one of the
        threads with a live session, at least one has)."""
        count = len(self._threads)
        any_live = any(self._live)
        lately = time.monotonic() - self._retry_refused_sec

        def rank(index: int) -> tuple[bool, bool, int, bool, int]:
            dead = not self._live[index]
            refused = any_live and self._refused_at[index] > lately
            turn = (index - self._turn) % count
            return live_only and dead, refused, self._in_hand[index], dead, turn

        index = min(range(count), key=rank)
        self._turn = (index + 1) % count
        return index

    async def _run_on(self, index: int, work: Callable[[], T], refused: list[bool]) -> T:
        self._in_hand[index] += 1
        try:
            return await self._threads[index].run(self._on_thread, index, work, refused)
        finally:
            self._in_hand[index] -= 1

    def _on_thread(self, index: int, work: Callable[[], T], refused: list[bool]) -> T:
        """On thread `index`: `work()` on a live session (`_on_a_live_session`), noting the
        session as it leaves it, or that the server refused to open one (in `refused` too)."""
        try:
            return _on_a_live_session(work, partial(self._opened, index, refused))
        finally:
            self._live[index] = database.obj is not None and not database.is_closed()

    def _opened(self, index: int, refused: list[bool], exc: BaseException | None) -> None:
        """On thread `index`: it opened a session (`exc` None) or the server refused one."""
        self._live[index] = exc is None
        if exc is None:
            self._refused_at[index] = float("-inf")
            if self._refusing.ended():  # the database is back: every thread may be tried
                self._refused_at = [float("-inf")] * len(self._threads)
            return
        self._refused_at[index] = time.monotonic()
        refused.append(True)
        self._refusing.began(exc)

    def stop(self) -> None:
        """Stop every thread (each finishes its queue and closes its session)."""
        for thread in self._threads:
            thread.stop()


class Refusals:
    """A worker's run of sessions refused to its work threads: its first refusal is one line of
    the log and its end (a session opened again) one more, not a line a thread or a try."""

    def __init__(self) -> None:
        self._since: float | None = None  # monotonic: the first refusal of the run
        self._lock = threading.Lock()  # threads refused at once: one line

    def began(self, exc: BaseException) -> None:
        """A session refused: said when it is the first of a run."""
        with self._lock:
            if self._since is not None:
                return
            self._since = time.monotonic()
        why = postgres.unavailable_reason(exc, getattr(database.obj, "database", None))
        log.warning(
            "the database refused the work threads a session (%s): account calls go to "
            "threads that have one, or are answered 503; said once until one opens again",
            why,
        )

    def ended(self) -> bool:
        """A session opened: whether it ends a run of refusals (then said)."""
        if self._since is None:  # the usual case: no lock taken
            return False
        with self._lock:
            since, self._since = self._since, None
        if since is None:
            return False
        log.warning(
            "the work threads have database sessions again, after %.0f s of refusals",
            time.monotonic() - since,
        )
        return True


def _on_a_live_session(work: Callable[[], T], opened: Callable[[BaseException | None], None]) -> T:
    """`work()`, after closing this thread's session if the server ended it while it was idle
    (an idle cut, a restart: pg_driver `close_if_ended`, no round trip): a change asked after
    one is made on a new session, not a 503 (nothing of it had run, nothing runs twice). A
    session opened before `work()` runs (none was open) is said, `opened(None)`, and so is one
    the server refused at once, `opened(exc)` (the error raised, nothing of the work run)."""
    from codelace_box.db.pg_driver import BoxPostgresqlDatabase  # psycopg: PostgreSQL only

    db = database.obj
    if isinstance(db, BoxPostgresqlDatabase):
        db.close_if_ended()
        if db.is_closed():
            began = time.monotonic()
            try:
                db.connect()
            except Exception as exc:  # refused at once, not a server found unreachable
                if is_unavailable(exc) and not found_unreachable(exc, time.monotonic() - began):
                    opened(exc)
                raise
            opened(None)
    return work()


_current: list[DbThread] = []  # this process's database thread, once started
_writer: list[DbThread] = []  # its write thread (PostgreSQL), once started
_work: list[WorkThreads] = []  # its threads of requests' own work (PostgreSQL), once started


def start_db_thread() -> DbThread:
    """Start this process's database thread (once the database is open; on PostgreSQL its
    work fails together behind a server found unreachable, and the requests' own work has a
    thread of its own); idempotent."""
    if not _current:
        _current.append(DbThread(fail_together=engine() == POSTGRES))
    if engine() == POSTGRES and not _work:
        _work.append(WorkThreads(WORK_THREADS, "codelace-work"))
    return _current[0]


def start_write_thread() -> DbThread | None:
    """On PostgreSQL, start this process's write thread (once the database is open;
    idempotent); on SQLite none: None."""
    if engine() != POSTGRES:
        return None
    if not _writer:
        _writer.append(DbThread("codelace-write"))
    return _writer[0]


def write_thread() -> DbThread | None:
    """This process's write thread, if started."""
    return _writer[0] if _writer else None


def stop_db_thread() -> None:
    """Stop this process's database threads, if started (before the database closes)."""
    while _writer:
        _writer.pop().stop()
    while _work:
        _work.pop().stop()
    while _current:
        _current.pop().stop()


async def run_in_db_thread(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run `fn(*args, **kwargs)` on this process's database thread and await its result."""
    if not _current:
        raise RuntimeError("the database thread is not started (server.py starts it)")
    return await _current[0].run(fn, *args, **kwargs)


async def read_in_db_thread(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """A read of an account's history (usage, spend, payments) on the database thread, run
    once more when it failed at once on a session the server had dropped (`again_if_dropped`):
    after an idle cut it is served, as the account's other reads are, not a 503."""
    return await run_in_db_thread(again_if_dropped, partial(fn, *args, **kwargs))


async def run_db_work(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`fn(*args, **kwargs)`, a request's own database work (short reads and writes), where
    the engine wants it: on PostgreSQL on this process's work thread, so the event loop
    never waits for the server, nor this work for a read that grows with history; on SQLite
    here, on the loop (a local call of microseconds, as before: a hand-over to the thread
    would cost more), and here too with no thread started (the CLI, tests in-process)."""
    if _work:
        return await _work[0].run(fn, *args, **kwargs)
    return fn(*args, **kwargs)


def _log_failure(done: Future[None]) -> None:
    if not done.cancelled() and done.exception() is not None:
        log.error("work on a database thread failed", exc_info=done.exception())
