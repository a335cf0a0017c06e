"""The running totals (per account, per key, per key and day: an account's days are the sums
of its keys') and the rollups (per minute, per day and model) that a write transaction counts
its usage rows into, summed per row and written once, just before its COMMIT.

The group commit (db/batch.py) settles many requests in one transaction; most of them are of
the same account, key and model, so their totals and rollups are the same five rows. Each
settlement `add`s its figures here instead of running five upserts of its own; the
transaction writes the sums (`write`, from `core.WriteTransaction`), in a fixed order of rows
(on PostgreSQL, two boxes' batches then lock them in the same order). What a savepoint rolls
back is forgotten with it (`mark` / `forget_since`; peewee's own savepoints too, `atomic()`
inside a write transaction: `DatabaseProxy`), and a transaction that rolls back writes none
(`discard`). Outside a write transaction a figure is written at once. The state is per
thread: a transaction runs on one thread (the event loop's, or the write thread's on
PostgreSQL).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, Protocol

import peewee

# (user id, key id or None, model), (errors 0/1, input, output, cache-read and cache-write
# tokens, cost nano-USD), created_at as stored, (its minute, its day)
Owner = tuple[int, int | None, str]
Figures = tuple[int, int, int, int, int, int]
Entry = tuple[Owner, Figures, str, tuple[str, str]]

COLUMNS = (
    "requests",
    "errors",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cost_nanos",
)
_ADD_UP = ", ".join(f"{c} = {{t}}.{c} + excluded.{c}" for c in COLUMNS)
_LATEST = (
    "last_request_at = CASE WHEN {t}.last_request_at IS NULL OR {t}.last_request_at <"
    " excluded.last_request_at THEN excluded.last_request_at ELSE {t}.last_request_at END"
)
_SUMS = ", ".join("?" for _ in COLUMNS)
ACCOUNT_SQL = (
    f"INSERT INTO account_usage (user_id, {', '.join(COLUMNS)}, last_request_at)"
    f" VALUES (?, {_SUMS}, ?) ON CONFLICT (user_id) DO UPDATE SET "
    + (_ADD_UP + ", " + _LATEST).format(t="account_usage")
)
KEY_SQL = (
    f"INSERT INTO key_usage (api_key_id, user_id, {', '.join(COLUMNS)}, last_request_at)"
    f" VALUES (?, ?, {_SUMS}, ?) ON CONFLICT (api_key_id) DO UPDATE SET "
    + (_ADD_UP + ", " + _LATEST).format(t="key_usage")
)
KEY_DAY_SQL = (  # api_key_id 0: a request with no key (the portal's)
    f"INSERT INTO key_day_usage (user_id, day, api_key_id, {', '.join(COLUMNS)})"
    f" VALUES (?, ?, ?, {_SUMS}) ON CONFLICT (user_id, day, api_key_id) DO UPDATE SET "
    + _ADD_UP.format(t="key_day_usage")
)
ROLLUP_SQL = (
    f"INSERT INTO usage_rollup (period, bucket, model, {', '.join(COLUMNS)})"
    f" VALUES (?, ?, ?, {_SUMS}) ON CONFLICT (period, bucket, model) DO UPDATE SET "
    + _ADD_UP.format(t="usage_rollup")
)


class _Executes(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Any: ...


class _Counted:
    """A thread's open write transaction: whether there is one, and what it counted."""

    __slots__ = ("entries", "open")

    def __init__(self) -> None:
        self.open = False
        self.entries: list[Entry] = []


class _State(threading.local):
    """This thread's `_Counted`: one object, so that each function below reads the
    thread-local once (about 530 instructions a read, a plain attribute's a tenth)."""

    def __init__(self) -> None:
        self.counted = _Counted()


_state = _State()


def begin() -> _Counted:
    """A write transaction opened on this thread; its state, for its `write` (on this thread)."""
    counted = _state.counted
    counted.open = True
    counted.entries = []
    return counted


def add(
    tx: _Executes, owner: Owner, figures: Figures, created_at: str, buckets: tuple[str, str]
) -> None:
    """Count one usage row into its account's and key's totals and its model's rollups (at
    the transaction's end; at once outside one)."""
    entry = (owner, figures, created_at, buckets)
    counted = _state.counted
    if counted.open:
        counted.entries.append(entry)
    else:
        _write(tx, [entry])


def mark() -> int:
    """Where a savepoint starts."""
    return len(_state.counted.entries)


def forget_since(position: int) -> None:
    """A savepoint rolled back: what it counted is not counted."""
    del _state.counted.entries[position:]


def discard() -> None:
    """The transaction rolled back (or ended without writing)."""
    counted = _state.counted
    counted.open = False
    counted.entries = []


def write(tx: _Executes, counted: _Counted) -> None:
    """Write what the transaction counted, summed per row (before its COMMIT); `counted`: what
    its `begin()` gave (no second read of the thread-local)."""
    entries, counted.entries = counted.entries, []
    counted.open = False
    if entries:
        _write(tx, entries)


def _write(tx: _Executes, entries: list[Entry]) -> None:
    if len(entries) == 1:  # every transaction of a quiet box: no sums to make, nothing to sort
        _write_one(tx, entries[0])
    else:
        _write_many(tx, entries)


def _write_many(tx: _Executes, entries: list[Entry]) -> None:
    """The rows of many usage rows, summed per row. A batch's rows are mostly of one account,
    key, model and minute: they are summed per such group first (one walk of a row's figures),
    and the groups, a few, into the five kinds of rows."""
    groups: dict[tuple[Owner, str, str], list[Any]] = {}
    for owner, figures, created_at, (minute, day) in entries:
        group = groups.get((owner, day, minute))
        if group is None:
            groups[(owner, day, minute)] = [1, *figures, created_at]
            continue
        group[0] += 1
        for offset, value in enumerate(figures, 1):
            group[offset] += value
        latest = group[-1]  # (a comparison: max() builds its arguments' tuple)
        group[-1] = created_at if created_at > latest else latest
    if len(groups) == 1:
        (((owner, day, minute), group),) = groups.items()
        _write_group(tx, owner, group, day, minute)
        return
    _write_groups(tx, groups)


def _write_group(tx: _Executes, owner: Owner, group: list[Any], day: str, minute: str) -> None:
    """The rows of one group ([requests, *sums, latest]): the same statements in the same order
    as `_write_groups` writes for many (the rollups' "day" sorts before "minute")."""
    user_id, key_id, model = owner
    *sums, latest = group
    tx.execute(ACCOUNT_SQL, (user_id, *sums, latest))
    tx.execute(KEY_DAY_SQL, (user_id, day, key_id or 0, *sums))
    if key_id is not None:
        tx.execute(KEY_SQL, (key_id, user_id, *sums, latest))
    tx.execute(ROLLUP_SQL, ("day", day, model, *sums))
    tx.execute(ROLLUP_SQL, ("minute", minute, model, *sums))


def _write_groups(tx: _Executes, groups: dict[tuple[Owner, str, str], list[Any]]) -> None:
    accounts: dict[int, list[Any]] = {}
    keys: dict[int, list[Any]] = {}
    key_days: dict[tuple[int, str, int], list[int]] = {}
    rollups: dict[tuple[str, str, str], list[int]] = {}
    for ((user_id, key_id, model), day, minute), group in groups.items():
        *sums, latest = group
        _sum_into(accounts, user_id, sums, latest)
        if key_id is not None:
            _sum_into(keys, key_id, sums, latest, user_id)
        _add(key_days.setdefault((user_id, day, key_id or 0), [0] * len(COLUMNS)), 0, sums)
        for period_key in (("minute", minute, model), ("day", day, model)):
            _add(rollups.setdefault(period_key, [0] * len(COLUMNS)), 0, sums)
    for user_id in sorted(accounts):
        *sums, latest = accounts[user_id]
        tx.execute(ACCOUNT_SQL, (user_id, *sums, latest))
    for key_day in sorted(key_days):
        tx.execute(KEY_DAY_SQL, (*key_day, *key_days[key_day]))
    for key_id in sorted(keys):
        owner_id, *sums, latest = keys[key_id]
        tx.execute(KEY_SQL, (key_id, owner_id, *sums, latest))
    for period_key in sorted(rollups):
        tx.execute(ROLLUP_SQL, (*period_key, *rollups[period_key]))


def _write_one(tx: _Executes, entry: Entry) -> None:
    """`_write` of one usage row: a group of one (the same statements in the same order, the
    rollups' "day" sorting before "minute"), without the dictionaries that sum many."""
    owner, figures, created_at, (minute, day) = entry
    _write_group(tx, owner, [1, *figures, created_at], day, minute)


def _sum_into(
    rows: dict[int, list[Any]], row_id: int, sums: list[int], latest: str, *lead: Any
) -> None:
    """Add a group's sums (requests first) to a total row: [*lead, requests, *sums, latest]."""
    row = rows.get(row_id)
    if row is None:
        rows[row_id] = [*lead, *sums, latest]
        return
    _add(row, len(lead), sums)
    row[-1] = max(row[-1], latest)


def _add(row: list[Any], start: int, sums: list[int]) -> None:
    """A group's sums (requests first) added to `row` from `start` on."""
    for offset, value in enumerate(sums, start):
        row[offset] += value


class _PeeweeSavepoint(peewee._savepoint):
    """peewee's savepoint (its `atomic()` inside an open transaction): what it counted is
    forgotten when it rolls back, as with core.Savepoint."""

    def __enter__(self) -> _PeeweeSavepoint:
        super().__enter__()
        self._mark = mark()
        return self

    def commit(self, begin: bool = True) -> None:  # begin: released, and a new one opened
        super().commit(begin)
        self._mark = mark()

    def rollback(self, begin: bool = True) -> None:
        forget_since(self._mark)
        super().rollback(begin)


class DatabaseProxy(peewee.DatabaseProxy):
    """The models' database (core.database): peewee's savepoints are `_PeeweeSavepoint`s.
    (No __slots__ of its own: peewee's Proxy sets only the names its class lists.)

    What the request path asks of it is passed on by methods of its own: peewee's Proxy
    finds every other name through `__getattr__`, which Python calls only after the plain
    lookup failed and built its AttributeError (3.5 against 0.9 us a call; a call at 1
    concurrent made nine such lookups)."""

    def savepoint(self) -> _PeeweeSavepoint:
        return _PeeweeSavepoint(self)

    def connection(self) -> Any:
        database = self.obj
        if database is None:
            raise _uninitialized()
        return database.connection()

    def push_transaction(self, transaction: Any) -> None:
        database = self.obj
        if database is None:
            raise _uninitialized()
        database.push_transaction(transaction)

    def pop_transaction(self) -> Any:
        database = self.obj
        if database is None:
            raise _uninitialized()
        return database.pop_transaction()


def _uninitialized() -> AttributeError:
    return AttributeError("Cannot use uninitialized Proxy.")  # as peewee's Proxy says
