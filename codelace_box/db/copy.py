"""`db copy`: every row of one database into an empty one of either engine (SQLite to
PostgreSQL when a team moves to several boxes, and back).

The source must be at this codelace-box's schema version; the target is migrated by the same
history, then filled table by table in foreign-key order, in one transaction (a failed copy
leaves the target as empty as it was). Ids are kept, so every reference stays right, and the
id counters continue where the source's were (db/id_counters.py): an id deleted at the top
before the copy is not handed out again after it.

Holds are not copied: a hold is a call in flight in a box serving the source (`db copy` run
before serve was stopped), which settles there and never in the copy; copied, it would block
its user's credit in the copy until a sweep found it orphaned (hours, for a copy served on
another machine). The copy's users hold nothing, and the caller is told how many calls were
in flight (`LateCtrlC.in_flight`): their charges are not in the copy.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from types import FrameType
from typing import Any

import peewee
from peewee import AutoField, CompositeKey, Database, Model

from codelace_box.db import core, hotpath
from codelace_box.db import models as schema
from codelace_box.db.id_counters import continue_counters, source_counters
from codelace_box.db.migrate import LATEST_VERSION, current_version, migrate
from codelace_box.db.postgres import is_postgres
from codelace_box.db.same_database import refuse_the_source_itself
from codelace_box.db.snapshot import one_instant
from codelace_box.db.sqlite_file import storage_failed
from codelace_box.db.text import storable_text
from codelace_box.errors import CodelaceError, ConfigError

BATCH_ROWS = 500
ABORTED = (
    "db copy aborted: nothing was copied (the target is as empty as before; "
    "run the same command again)"
)


class LateCtrlC:
    """Ctrl-C from the moment every row of the copy is written: recorded (`seen`), not raised.
    The COMMIT follows at once, and nothing can take a committed copy back: an interrupt
    raised then (or while the command printed what it copied) ended it with 'aborted', exit 1,
    over a whole copy. The caller `restore()`s Ctrl-C once it is done (main thread only)."""

    def __init__(self) -> None:
        self.seen = False
        self._before: Any = None
        self.in_flight = 0  # the source's calls in flight whose holds were left out (see above)

    def defer(self) -> None:
        if threading.current_thread() is threading.main_thread() and self._before is None:
            self._before = signal.signal(signal.SIGINT, self._record)

    def _record(self, signum: int, frame: FrameType | None) -> None:
        self.seen = True

    def restore(self) -> None:
        if self._before is not None:
            signal.signal(signal.SIGINT, self._before)
            self._before = None


def copied_models() -> list[type[Model]]:
    """Every table of the schema but the migration record, parents before children."""
    found = [
        value
        for value in vars(schema).values()
        if isinstance(value, type)
        and issubclass(value, schema.BaseModel)
        and value not in (schema.BaseModel, schema.UsageFigures, schema.SchemaMigration)
    ]
    ordered: list[type[Model]] = peewee.sort_models(found)  # type: ignore[attr-defined]
    return ordered


def _columns(model: type[Model]) -> list[str]:
    return [field.column_name for field in model._meta.sorted_fields]


def _key_columns(model: type[Model]) -> list[str]:
    """The primary key's columns (several for a composite key, as refusal_count's)."""
    key = model._meta.primary_key
    if isinstance(key, CompositeKey):
        return [model._meta.fields[name].column_name for name in key.field_names]
    return [key.column_name]  # type: ignore[union-attr]


def _rows(source: Database, model: type[Model]) -> Iterator[list[tuple[Any, ...]]]:
    """The table's rows in batches, by primary key."""
    columns = ", ".join(f'"{name}"' for name in _columns(model))
    table = model._meta.table_name
    order = ", ".join(f'"{name}"' for name in _key_columns(model))
    sql = f'SELECT {columns} FROM "{table}" ORDER BY {order}'
    if is_postgres(source):
        yield from _server_side_batches(source, sql)
        return
    cursor = source.execute_sql(sql)
    batch: list[tuple[Any, ...]] = []
    for row in cursor:  # apsw's cursor has no fetchmany; both iterate
        batch.append(tuple(row))
        if len(batch) == BATCH_ROWS:
            yield batch
            batch = []
    if batch:
        yield batch


def _server_side_batches(source: Database, sql: str) -> Iterator[list[tuple[Any, ...]]]:
    """PostgreSQL's rows through a cursor of the server (inside one_instant's transaction),
    BATCH_ROWS a fetch: psycopg's ordinary cursor takes the whole answer at once, a table's
    size in memory (months of usage history)."""
    with source.connection().cursor(name="codelace_db_copy") as cursor:
        cursor.execute(sql)
        while batch := cursor.fetchmany(BATCH_ROWS):
            yield [tuple(row) for row in batch]


def _portable(value: Any) -> Any:
    """A value as both engines take it (SQLite stores timestamps as text)."""
    if isinstance(value, datetime):
        return str(value.replace(tzinfo=None))
    if isinstance(value, memoryview):
        return bytes(value)
    return value


def _for_postgres(value: Any) -> Any:
    """A value as PostgreSQL takes it: a NUL in text, which SQLite keeps and PostgreSQL takes in
    none (a release before 2026-12-05 kept an upstream's words with it as a provider key's
    failure_reason), written as the box writes it now (`storable_text`); one such row failed
    the whole copy."""
    if isinstance(value, str):
        return storable_text(value) if "\x00" in value else value
    return _portable(value)


EARLIER_TABLES = ("account_day_usage",)  # an older release's (migration 22 drops it)


def _foreign_tables() -> list[str]:
    """The open target's tables that are not codelace-box's (another program's database named
    by mistake: its tables have none of our rows, so it passed for empty)."""
    ours = {model._meta.table_name for model in copied_models()}
    ours |= {schema.SchemaMigration._meta.table_name, *EARLIER_TABLES}
    tables = core.database.obj.get_tables()
    return sorted(t for t in tables if t not in ours and not t.startswith("sqlite_"))


def _target_is_empty() -> bool:
    for model in copied_models():
        table = model._meta.table_name
        if core.table_exists(table) and core.query_one(f'SELECT 1 FROM "{table}" LIMIT 1'):
            return False
    return True


# Called inside the copy's transaction, once every row is in: what the caller writes with it
# (the CLI's audit entry, so the copy and its record commit together); it gets the counts.
Recorded = Callable[[core.Tx, dict[str, int]], None]


def copy_database(
    source_target: str,
    destination: str,
    recorded: Recorded | None = None,
    late: LateCtrlC | None = None,
) -> dict[str, int]:
    """Copy every row of `source_target`, as it was at one instant, into the empty database
    `destination`; the rows copied per table. The destination stays the open database.

    Ctrl-C (KeyboardInterrupt) stops it with a CodelaceError that says nothing was copied: the
    rows go in one transaction, rolled back (db/core.py, on either engine). One that came only
    after every row was written stops nothing: `late` records it (deferred from then on, until
    the caller restores it), the copy commits and is whole."""
    counts: dict[str, int] = {}  # filled inside the transaction, into a target found empty
    try:
        _copy_at_one_instant(source_target, destination, counts, recorded, late)
    except KeyboardInterrupt:
        if not counts or _target_is_empty():  # core.database: the destination once counted
            raise CodelaceError(ABORTED) from None
    return counts


def _copy_at_one_instant(
    source_target: str,
    destination: str,
    counts: dict[str, int],
    recorded: Recorded | None,
    late: LateCtrlC | None,
) -> None:
    source = core.open_database(source_target)
    try:
        with one_instant(source):
            _copy_all(source, destination, counts, recorded, late)
    finally:
        source.close()


def _copy_all(
    source: Database,
    destination: str,
    counts: dict[str, int],
    recorded: Recorded | None,
    late: LateCtrlC | None,
) -> None:
    version = current_version(source)
    if version != LATEST_VERSION:
        fix = (
            "run `codelace-box migrate` on it first"
            if version < LATEST_VERSION
            else ("copy it with the codelace-box that migrated it")
        )
        raise CodelaceError(
            f"the source database is at schema version {version}, this codelace-box at "
            f"{LATEST_VERSION}: {fix}"
        )
    _open_destination(destination)  # the models (and write_transaction) now point here
    refuse_the_source_itself(source, core.database.obj)
    try:
        _copy_into_target(source, counts, recorded, late)
    except Exception as exc:  # its disk full, a file size limit: the target's, never the
        if not storage_failed(exc):  # source's (only read): rolled back, as a Ctrl-C is
            raise
        why = str(getattr(exc, "orig", None) or exc)
        raise CodelaceError(
            f"cannot write the copy to the target database: {why}; nothing was copied"
        ) from None


def _open_destination(destination: str) -> None:
    """Open the target, its refusal naming `--to` (where the operator gave it), not the
    setting of a box's own database ('database.path ...': the config was not at fault)."""
    try:
        core.open_database(destination)
    except ConfigError as exc:
        said = str(exc)
        for setting, given in (("database.path ", "--to sqlite:///"), ("database.url ", "--to ")):
            if said.startswith(setting):
                raise type(exc)(given + said.removeprefix(setting)) from None
        raise


def _copy_into_target(
    source: Database, counts: dict[str, int], recorded: Recorded | None, late: LateCtrlC | None
) -> None:
    """Into the open (destination) database, found empty: the schema, then every row in one
    transaction."""
    if foreign := _foreign_tables():
        more = f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
        raise CodelaceError(
            f"the target database holds tables of another program ({', '.join(foreign[:5])}"
            f"{more}): copy only into an empty database"
        )
    if not _target_is_empty():
        raise CodelaceError("the target database is not empty: copy only into an empty one")
    migrate(core.database.obj)
    serial = [m for m in copied_models() if isinstance(m._meta.primary_key, AutoField)]
    tables = [model._meta.table_name for model in serial]
    counters = source_counters(source, tables)
    with core.write_transaction() as tx:
        for model in copied_models():
            counts[model._meta.table_name] = _copy_table(tx, source, model)
        continue_counters(tx, tables, counters)
        in_flight = counts.pop(schema.Hold._meta.table_name, 0)
        if in_flight:  # calls in flight at the source settle there: nothing held for them here
            tx.execute(f'DELETE FROM "{schema.Hold._meta.table_name}"')
            hotpath.recount_held(tx)
        counts[schema.Hold._meta.table_name] = 0
        if late is not None:
            late.in_flight = in_flight
        if recorded is not None:
            recorded(tx, dict(counts))
        if late is not None:
            late.defer()  # every row is in: Ctrl-C can no longer undo the copy


def _copy_table(tx: core.Tx, source: Database, model: type[Model]) -> int:
    columns = _columns(model)
    names = ", ".join(f'"{name}"' for name in columns)
    marks = ", ".join("?" for _ in columns)
    insert = f'INSERT INTO "{model._meta.table_name}" ({names}) VALUES ({marks})'
    portable = _for_postgres if core.engine() == core.POSTGRES else _portable
    copied = 0
    for batch in _rows(source, model):
        for row in batch:
            tx.execute(insert, tuple(portable(value) for value in row))
        copied += len(batch)
    return copied
