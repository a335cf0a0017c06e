"""The group commit's pipeline on PostgreSQL, driven on libpq (psycopg's `pq` layer) directly.

psycopg's own pipeline mode sends every statement as it is executed: a poll and a send per
statement, and about 40 µs of its Python each (a cursor, the query converted, the pipeline's
bookkeeping). A batch of the hot path runs about nine statements a request and reads few of
their answers, so here a statement is only queued in libpq's output buffer:

- its parameters are dumped by psycopg's Transformer (the C one; the connection's adapters, so
  every value is sent as psycopg would send it: a bool as 0/1, an int by its size, a str as
  unknown);
- a statement with parameters is prepared once per connection the second time it is sent (by
  its text and its parameter types, as psycopg keys them) and then executed by name; one
  without (BEGIN, COMMIT, SAVEPOINT) is sent as it is;
- nothing goes over the wire until an answer is read (`fetchone`, `fetchall`, `rowcount`:
  libpq's flush request) or the batch syncs: one send and one wait for what was queued.

Outside a batch, db/pg_driver.py runs a statement with parameters as a pipeline of one: the
same path, one round trip (psycopg's cursor costs about 25 µs of CPU for the key lookup each
request makes, this about 15).

Answers come back in order: waiting for one reads those queued before it, and the first server
error among them is raised there (as psycopg's pipeline does; db/batch.py sorts out whose it
was). After an error the server skips what follows until the next sync (`sync()`). Rows are
loaded by the Transformer too, with the connection's loaders (an integral NUMERIC as an int).

libpq learns the transaction's status only at a sync, so between syncs the connection may
still say it is idle after BEGIN: a pipeline that sent any statement is in the batch's
transaction (`sent`; db/core.py's write transaction nests a savepoint in it, and an error
rolls it back).

While the pipeline is open the connection is libpq's alone: psycopg's own cursors on it would
read this pipeline's answers as theirs, so db/pg_driver.py's database refuses them meanwhile (a
write in a group commit uses its `Tx`, as db/batch.py says).
"""

from __future__ import annotations

import itertools
import select
from collections import deque
from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import Any

import psycopg
from psycopg import abc as pg_abc
from psycopg import errors as pg_errors
from psycopg.adapt import PyFormat, Transformer
from psycopg.pq import ExecStatus

MAX_PREPARED = 256  # statements kept prepared per connection; others are sent unnamed
MAX_SEEN = 1024  # statements seen once, remembered to be prepared when seen again
ROWS_AT_ONCE = 1000  # rows loaded at a time when an answer is iterated
_READ, _READ_WRITE = select.POLLIN | select.POLLERR | select.POLLHUP, select.POLLIN | select.POLLOUT
Key = tuple[str, tuple[int, ...]]  # a statement's text and its parameters' types


@lru_cache(maxsize=1024)
def numbered(sql: str) -> bytes:
    """A statement written with `?` parameters, in libpq's `$1, $2, ...`."""
    first, *rest = sql.split("?")
    return (first + "".join(f"${i}{part}" for i, part in enumerate(rest, 1))).encode()


@lru_cache(maxsize=64)
def _auto(count: int) -> list[PyFormat]:
    return [PyFormat.AUTO] * count


class Prepared:
    """The statements prepared on one connection: their names by `Key`. A statement is
    prepared the second time it is seen (one run once, a report's, is sent unnamed), and at
    most MAX_PREPARED are."""

    __slots__ = ("_numbers", "_seen", "names")

    def __init__(self) -> None:
        self.names: dict[Key, bytes] = {}
        self._seen: set[Key] = set()
        self._numbers = itertools.count(1)

    def worth_preparing(self, key: Key) -> bool:
        """Whether to prepare a statement not prepared yet: it was seen before."""
        if key in self._seen:
            self._seen.discard(key)
            return len(self.names) < MAX_PREPARED
        if len(self._seen) >= MAX_SEEN:
            self._seen.clear()
        self._seen.add(key)
        return False

    def new_name(self) -> bytes:
        return f"codelace_{next(self._numbers)}".encode()


class Answer:
    """A statement sent in the pipeline: its rows and its count, once its result is in (asking
    for them waits for it)."""

    __slots__ = ("_error", "_loader", "_pipeline", "_result")

    def __init__(self, pipeline: Pipeline, loader: pg_abc.Transformer) -> None:
        self._pipeline: Pipeline | None = pipeline
        self._loader = loader
        self._result: Any = None
        self._error: BaseException | None = None

    def landed(self, result: Any, error: BaseException | None) -> None:
        """Its result (the last of the statement's), or the error it ended with."""
        self._pipeline, self._result, self._error = None, result, error

    def _ready(self) -> Any:
        if self._pipeline is not None:
            self._pipeline.wait_for(self)
        if self._error is not None:
            raise self._error
        return self._result

    @property
    def rowcount(self) -> int:
        count = self._ready().command_tuples
        return -1 if count is None else int(count)

    def _rows(self) -> Any:
        result = self._ready()
        if result.status != ExecStatus.TUPLES_OK:
            raise psycopg.ProgrammingError("the statement returned no rows to fetch")
        return result

    def fetchall(self) -> list[Any]:
        result = self._rows()
        if not result.ntuples:
            return []
        loader = self._loader
        loader.set_pgresult(result)
        rows: list[Any] = loader.load_rows(0, result.ntuples, tuple)
        return rows

    def fetchone(self) -> Any:
        result = self._rows()
        if not result.ntuples:
            return None
        self._loader.set_pgresult(result)
        return self._loader.load_row(0, tuple)

    def __iter__(self) -> Iterator[Any]:
        result = self._rows()
        count = result.ntuples
        for start in range(0, count, ROWS_AT_ONCE):
            self._loader.set_pgresult(result)  # again: another answer may have loaded between
            yield from self._loader.load_rows(start, min(start + ROWS_AT_ONCE, count), tuple)


class Pipeline:
    """libpq's pipeline mode on one psycopg connection, for the length of a `with` block."""

    def __init__(self, conn: psycopg.Connection[Any], prepared: Prepared) -> None:
        self._conn, self._pgconn = conn, conn.pgconn
        self._prepared = prepared
        self._queue: deque[Answer | Key] = deque()  # answers, and prepares (their key)
        self._dumper: pg_abc.Transformer = Transformer(conn)
        self._loader: pg_abc.Transformer = Transformer(conn)
        self._poll = select.poll()
        self.sent = False  # any statement yet
        self._unsynced = False  # statements sent since the last sync

    def __enter__(self) -> Pipeline:
        """Pipeline mode on the connection (a pipeline may be entered again once left)."""
        self.sent = self._unsynced = False
        self._pgconn.enter_pipeline_mode()
        self._poll.register(self._pgconn.socket, _READ_WRITE)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        failed = exc_type is not None
        try:
            self.sync()
        except Exception:
            failed = True
            if exc_type is None:
                raise  # else what went wrong first is already on its way
        except BaseException:  # an interrupt (Ctrl-C) while the answers were awaited
            failed = True
            raise
        finally:
            self._leave(quietly=failed)

    def _leave(self, quietly: bool) -> None:
        """Out of pipeline mode, where libpq lets it: not with answers left unread (a lost
        connection; a wait that Ctrl-C interrupted). Then the connection stays in pipeline
        mode, out of step with the server, and db/pg_driver.py's PgTx closes it. `quietly`:
        an exception is on its way (a KeyboardInterrupt), not to be replaced by libpq's refusal."""
        if self._queue:
            return
        try:
            self._pgconn.exit_pipeline_mode()
        except psycopg.OperationalError:
            if not quietly:
                raise

    def send(self, sql: str, params: Sequence[Any]) -> Answer:
        """Queue a statement (`?` parameters); its answer, read later."""
        pgconn, self.sent, self._unsynced = self._pgconn, True, True
        if not params:
            pgconn.send_query_params(sql.encode(), None)
        else:
            dumper = self._dumper
            values = dumper.dump_sequence(params, _auto(len(params)))
            key: Key = (sql, dumper.types or ())
            name = self._prepared.names.get(key)
            if name is None and self._prepared.worth_preparing(key):
                name = self._prepare(key)
            if name is None:
                pgconn.send_query_params(numbered(sql), values, key[1], dumper.formats)
            else:
                pgconn.send_query_prepared(name, values, dumper.formats)
        answer = Answer(self, self._loader)
        self._queue.append(answer)
        return answer

    def _prepare(self, key: Key) -> bytes:
        name = self._prepared.new_name()
        self._pgconn.send_prepare(name, numbered(key[0]), key[1])
        self._prepared.names[key] = name  # forgotten again if the server refuses it
        self._queue.append(key)
        return name

    def wait_for(self, answer: Answer) -> None:
        """Send what is queued and read the answers up to `answer` (raising the first error
        among them)."""
        self._pgconn.send_flush_request()
        self._flush()
        error = self._read(until=answer)
        if error is not None:
            raise error

    def sync(self) -> None:
        """Send what is queued with a sync and read every answer (raising the first error);
        after an error the server runs statements again from here (answers read already
        count: the server skips what follows an error until a sync, even a flush request)."""
        if not self._unsynced:
            return
        self._unsynced = False
        self._pgconn.pipeline_sync()
        self._flush()
        error = self._read(until=None)
        synced = self._next_result()
        if synced is None or synced.status != ExecStatus.PIPELINE_SYNC:
            raise psycopg.OperationalError("the pipeline lost its place among the answers")
        if error is not None:
            raise error

    def _read(self, until: Answer | None) -> BaseException | None:
        """Read the queued statements' answers up to `until` (None: all); the first error."""
        first: BaseException | None = None
        while self._queue:
            item = self._queue.popleft()
            error = self._take(item)
            first = first or error
            if item is until:
                break
        return first

    def _take(self, item: Answer | Key) -> BaseException | None:
        """Read one statement's results; the error it ended with, if any."""
        last, error = None, None
        while (result := self._next_result()) is not None:
            last = result
            if error is None and result.status == ExecStatus.FATAL_ERROR:
                error = pg_errors.error_from_result(result, encoding=self._conn.info.encoding)
            elif error is None and result.status == ExecStatus.PIPELINE_ABORTED:
                error = pg_errors.PipelineAborted("pipeline aborted")
        if isinstance(item, Answer):
            item.landed(last, error)
        elif error is not None:  # a prepare that failed: not prepared after all
            self._prepared.names.pop(item, None)
        if isinstance(error, pg_errors.InvalidSqlStatementName):  # the session lost them
            self._prepared.names.clear()  # (DEALLOCATE ALL): prepared again when run again
        return error

    def _next_result(self) -> Any:
        pgconn = self._pgconn
        while pgconn.is_busy():
            self._poll.modify(pgconn.socket, _READ)
            self._poll.poll()
            pgconn.consume_input()
        return pgconn.get_result()

    def _flush(self) -> None:
        pgconn, poll = self._pgconn, self._poll
        poll.modify(pgconn.socket, _READ_WRITE)
        while pgconn.flush():
            for _, event in poll.poll():
                if event & select.POLLIN:
                    pgconn.consume_input()
