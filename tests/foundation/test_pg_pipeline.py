"""The group commit's pipeline on PostgreSQL (db/pg_pipeline.py): statements queued and sent
together, answers read in order, the first error raised where an answer is waited for, the
server taking statements again after a sync, prepared statements per connection, and
psycopg's own cursors refused while the pipeline has the connection."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from psycopg import errors as pg_errors

from codelace_box.accounts.users import create_user
from codelace_box.db import pg_pipeline
from codelace_box.db.core import connection, pipelined, query_one, sync, write_transaction
from codelace_box.db.models import User

HELD = 'UPDATE "user" SET held_nanos = held_nanos + ? WHERE id = ?'
ROW = 'SELECT email, balance_nanos, held_nanos FROM "user" WHERE id = ?'


@pytest.fixture
def user_id(pg_db: str) -> Iterator[int]:
    yield create_user("pipe@pg.test").id


def test_statements_are_numbered_for_libpq() -> None:
    assert pg_pipeline.numbered("SELECT ? + ?, 'a' || ?") == b"SELECT $1 + $2, 'a' || $3"
    assert pg_pipeline.numbered("COMMIT") == b"COMMIT"


def test_answers_come_back_in_order_with_rows_and_counts(user_id: int) -> None:
    with pipelined(), write_transaction() as tx:
        assert tx.execute(HELD, (5, user_id)) is not None
        tx.execute(HELD, (7, user_id))
        assert tx.changes() == 1
        assert tx.execute(ROW, (user_id,)).fetchone() == ("pipe@pg.test", 0, 12)
        assert list(tx.execute(ROW, (user_id,))) == [("pipe@pg.test", 0, 12)]
        assert tx.execute(ROW, (-1,)).fetchall() == []
        tx.execute(HELD, (1, -1))
        assert tx.changes() == 0
    assert query_one('SELECT held_nanos FROM "user" WHERE id = ?', (user_id,)) == (12,)


def test_a_failed_statement_raises_where_an_answer_is_read_and_the_rest_is_skipped(
    user_id: int,
) -> None:
    with pytest.raises(pg_errors.DivisionByZero), pipelined(), write_transaction() as tx:
        tx.execute(HELD, (5, user_id))
        tx.execute("SELECT 1 / ?", (0,))  # fails on the server, unread
        skipped = tx.execute(HELD, (7, user_id))
        tx.execute(ROW, (user_id,)).fetchone()  # the first error is raised here
    with pytest.raises(pg_errors.PipelineAborted):
        skipped.fetchall()
    assert not connection().in_transaction()  # rolled back
    assert query_one('SELECT held_nanos FROM "user" WHERE id = ?', (user_id,)) == (0,)


@pytest.mark.parametrize("read_first", [False, True])
def test_after_a_sync_the_server_runs_statements_again(user_id: int, read_first: bool) -> None:
    """After an error the server skips everything (even a flush request) until a sync: the
    sync is sent whether the error was read by it or already by a read before it."""
    with pipelined(), write_transaction() as tx:
        tx.execute("SAVEPOINT s")
        tx.execute(HELD, (5, user_id))
        failing = tx.execute("SELECT 1 / ?", (0,))
        if read_first:
            with pytest.raises(pg_errors.DivisionByZero):
                failing.fetchall()
            sync(tx)  # nothing left to raise, but the server waits for it
        else:
            with pytest.raises(pg_errors.DivisionByZero):
                sync(tx)
        tx.execute("ROLLBACK TO s")
        tx.execute(HELD, (3, user_id))
        assert tx.changes() == 1
    assert query_one('SELECT held_nanos FROM "user" WHERE id = ?', (user_id,)) == (3,)


def test_statements_are_prepared_once_per_connection_and_a_refused_one_is_forgotten(
    user_id: int,
) -> None:
    for _ in range(3):
        with pipelined(), write_transaction() as tx:
            tx.execute(HELD, (1, user_id))
    prepared = query_one(
        "SELECT COUNT(*) FROM pg_prepared_statements WHERE name LIKE 'codelace_%' "
        "AND statement LIKE 'UPDATE \"user\" SET held_nanos%'"
    )
    assert prepared == (1,)
    bad = 'SELECT no_such_column FROM "user" WHERE id = ?'
    for _ in range(2):  # sent unnamed, then prepared: it fails the same way both times
        with pytest.raises(pg_errors.UndefinedColumn), pipelined(), write_transaction() as tx:
            tx.execute(bad, (user_id,)).fetchall()
    assert User.get_by_id(user_id).held_nanos == 3


def test_the_pipeline_has_the_connection_to_itself(user_id: int) -> None:
    refused = pytest.raises(RuntimeError, match="through its Tx")
    with refused, pipelined(), write_transaction() as tx:
        tx.execute(HELD, (5, user_id))
        User.get_by_id(user_id)  # peewee's cursor would read the pipeline's answers
    assert User.get_by_id(user_id).held_nanos == 0  # the transaction rolled back


def test_a_write_transaction_nests_as_a_savepoint_inside_the_pipeline(user_id: int) -> None:
    """libpq learns the transaction's status at a sync only: with every answer read and no
    sync since BEGIN, the connection still says idle, and the pipeline knows better."""
    with pipelined(), write_transaction() as tx:
        tx.execute(HELD, (5, user_id))
        assert tx.changes() == 1  # every answer is in, no sync yet
        assert connection().in_transaction()  # type: ignore[attr-defined]
        with pytest.raises(ValueError), write_transaction() as inner:  # a savepoint
            inner.execute(HELD, (100, user_id))
            raise ValueError
    assert query_one('SELECT held_nanos FROM "user" WHERE id = ?', (user_id,)) == (5,)


def test_a_refusal_after_every_answer_was_read_rolls_the_transaction_back(user_id: int) -> None:
    with pytest.raises(ValueError), pipelined(), write_transaction() as tx:
        tx.execute(HELD, (5, user_id))
        assert tx.changes() == 1
        raise ValueError  # e.g. a 402 decided from that count
    assert not connection().in_transaction()  # type: ignore[attr-defined]
    assert query_one('SELECT held_nanos FROM "user" WHERE id = ?', (user_id,)) == (0,)


def test_a_statement_of_its_own_runs_as_a_pipeline_of_one(user_id: int) -> None:
    """Outside a batch a statement with parameters is one round trip, prepared the second
    time it runs; its errors are psycopg's, and the connection goes on after one."""
    statement = 'SELECT email FROM "user" WHERE id = ? AND held_nanos >= ?'
    prepared = "SELECT COUNT(*) FROM pg_prepared_statements WHERE statement LIKE 'SELECT email%'"
    assert query_one(statement, (user_id, 0)) == ("pipe@pg.test",)
    assert query_one(prepared) == (0,)  # seen once: sent unnamed
    assert query_one(statement, (user_id, 0)) == ("pipe@pg.test",)
    assert query_one(statement, (user_id, 1)) is None
    assert query_one(prepared) == (1,)
    tx = connection()
    tx.execute(HELD, (4, user_id))
    assert tx.changes() == 1
    with pytest.raises(pg_errors.DivisionByZero):
        query_one("SELECT 1 / ?", (0,))
    assert query_one("SELECT 2 * ?", (21,)) == (42,)


def test_an_answer_iterated_loads_its_rows_a_thousand_at_a_time(pg_db: str) -> None:
    tx = connection()
    series = tx.execute("SELECT g FROM generate_series(1, ?) g", (2_500,))
    seen = []
    for number, (value,) in enumerate(series, 1):
        seen.append(value)
        if number in (999, 1_000, 2_000):  # another answer loaded in between
            assert query_one("SELECT ? + 0", (number,)) == (number,)
    assert seen == list(range(1, 2_501))


def test_prepared_statements_outlive_a_rollback_and_come_back_after_a_deallocate(
    user_id: int,
) -> None:
    """psycopg would DEALLOCATE ALL after a ROLLBACK once it prepared statements of its own
    (peewee's, run 5 times): the box turns its preparing off. A session that lost them anyway
    fails one statement and prepares them again."""
    for _ in range(6):
        User.get_by_id(user_id)  # peewee, through psycopg
    for _ in range(2):
        assert query_one(ROW, (user_id,)) == ("pipe@pg.test", 0, 0)
    with pytest.raises(ValueError), write_transaction() as tx:
        tx.execute(HELD, (1, user_id))
        raise ValueError  # ROLLBACK
    assert query_one(ROW, (user_id,)) == ("pipe@pg.test", 0, 0)
    connection().execute("DEALLOCATE ALL")
    with pytest.raises(pg_errors.InvalidSqlStatementName):
        query_one(ROW, (user_id,))
    for _ in range(3):
        assert query_one(ROW, (user_id,)) == ("pipe@pg.test", 0, 0)
