"""The key lookup's kept rows (db/keycache.py) in-process on a real SQLite file: every change to
what the lookup reads holds at the next lookup, whether this connection wrote it (the HTTP API
of this worker) or another connection did (another worker, the CLI), and the request path's own
writes keep the rows."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import apsw
import pytest

from codelace_box.accounts import keys
from codelace_box.accounts.limits import set_user_limits
from codelace_box.accounts.users import create_user, set_user_status
from codelace_box.db import hotpath, keycache
from codelace_box.db.core import (
    close_database,
    connection,
    db_time,
    open_database,
    utcnow,
    write_transaction,
)
from codelace_box.db.migrate import migrate
from codelace_box.errors import AuthenticationFailed, PermissionDenied

EMAIL = "rows@example.com"


@pytest.fixture
def db_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "rows.db"
    migrate(open_database(path))
    yield path
    close_database()


@pytest.fixture
def key(db_file: Path) -> str:
    user = create_user(EMAIL)
    full_key = keys.create_key(user.id, "rows").full_key
    keys.authenticate(full_key)  # its first use noted: a write to its row, which drops it
    keys.authenticate(full_key)  # read again: kept from here on
    return full_key


def kept_rows() -> dict[str, object]:
    kept = keycache._kept[0]
    assert kept is not None
    return kept.rows


def test_a_looked_up_key_is_kept_and_the_request_paths_writes_keep_it(key: str):
    row = kept_rows()[keys.hash_key(key)]
    auth = keys.authenticate(key)
    with write_transaction() as tx:  # what admission and settlement write: none of its columns
        tx.execute('UPDATE "user" SET held_nanos = held_nanos + 5, balance_nanos = 9')
        tx.execute("UPDATE api_key SET held_nanos = 5, spent_nanos = 7, period_start = NULL")
    assert keys.authenticate(key) == auth
    assert kept_rows()[keys.hash_key(key)] is row  # not read again


def test_a_key_revoked_through_this_connection_fails_at_once(key: str):
    keys.revoke_key(keys.list_keys(keys.authenticate(key).user_id)[0].uuid)
    with pytest.raises(AuthenticationFailed):
        keys.authenticate(key)


def test_a_key_changed_through_this_connection_is_read_at_once(key: str):
    uuid = keys.list_keys(keys.authenticate(key).user_id)[0].uuid
    keys.update_key(uuid, {"limit_usd": 1})
    assert keys.authenticate(key).key_budgeted
    with write_transaction() as tx:  # as PATCH stores an allow-list (without a catalog here)
        tx.execute("UPDATE api_key SET allowed_models = ?", ('["a/b"]',))
    auth = keys.authenticate(key)
    assert auth.allowed_models == frozenset({"a/b"}) and auth.key_budgeted
    keys.update_key(uuid, {"can_manage_keys": False})
    assert not keys.authenticate(key).can_manage_keys
    past = db_time(utcnow() - timedelta(seconds=5))
    with write_transaction() as tx:  # PATCH refuses a past expiry: the moment passing, written
        tx.execute("UPDATE api_key SET expires_at = ?", (past,))
    with pytest.raises(AuthenticationFailed, match="expired"):
        keys.authenticate(key)


def test_an_account_changed_through_this_connection_is_read_at_once(key: str):
    user = set_user_status(EMAIL, "disabled")
    with pytest.raises(PermissionDenied):
        keys.authenticate(key)
    set_user_status(EMAIL, "active")
    set_user_limits(user, {"rpm": 7, "max_concurrent": 3})
    auth = keys.authenticate(key)
    assert (auth.rpm, auth.max_concurrent) == (7, 3)


def test_a_change_rolled_back_leaves_the_stored_row(key: str):
    with pytest.raises(RuntimeError), write_transaction() as tx:
        tx.execute("UPDATE api_key SET revoked_at = ?", (db_time(utcnow()),))
        with pytest.raises(AuthenticationFailed):  # inside: its own write, read through
            keys.authenticate(key)
        raise RuntimeError("rolled back")
    assert keys.authenticate(key).email == EMAIL


@pytest.mark.parametrize(
    "change",
    [
        "UPDATE api_key SET revoked_at = '2026-01-01 00:00:00'",
        "UPDATE \"user\" SET status = 'disabled'",
        "DELETE FROM api_key",
        "UPDATE api_key SET expires_at = '2026-01-01 00:00:00'",
    ],
)
def test_a_change_by_another_connection_is_read_at_once(key: str, db_file: Path, change: str):
    other = apsw.Connection(str(db_file))  # another worker, the CLI, the dashboard
    other.execute("PRAGMA busy_timeout = 5000")
    other.execute(change)
    other.close()
    with pytest.raises((AuthenticationFailed, PermissionDenied)):
        keys.authenticate(key)


def test_a_new_connection_keeps_rows_of_its_own(key: str, db_file: Path):
    first = keycache._kept[0]
    close_database()
    migrate(open_database(db_file))
    connection().execute("UPDATE api_key SET revoked_at = '2026-01-01 00:00:00'")
    with pytest.raises(AuthenticationFailed):
        keys.authenticate(key)
    assert keycache._kept[0] is not first


def test_mostly_misses_read_through_for_a_while_and_stay_correct(key: str, db_file: Path):
    other = apsw.Connection(str(db_file))  # another worker settling between every lookup
    other.execute("PRAGMA busy_timeout = 5000")
    for _ in range(keycache.WINDOW + 1):
        other.execute('UPDATE "user" SET balance_nanos = balance_nanos + 1')
        keys.authenticate(key)
    kept = keycache._kept[0]
    assert kept is not None and kept.skip > 0  # reading through, without the version's read
    other.execute("UPDATE api_key SET revoked_at = '2026-01-01 00:00:00'")
    with pytest.raises(AuthenticationFailed):
        keys.authenticate(key)
    other.execute("UPDATE api_key SET revoked_at = NULL")
    kept.skip = 1  # the last lookup read through: the next reads the version again
    keys.authenticate(key)
    other.execute("UPDATE api_key SET revoked_at = '2026-01-01 00:00:00'")
    with pytest.raises(AuthenticationFailed):
        keys.authenticate(key)
    other.close()


def test_the_triggers_watch_every_column_the_lookup_reads():
    """A column added to the lookup's SELECT and not to the triggers would be kept stale."""
    read = re.findall(r"\b([ku])\.(\w+)", hotpath._KEY_OWNER_COLUMNS)
    watched = {
        "k": {c.strip() for c in keycache._KEY_COLUMNS.split(",")},
        "u": {c.strip() for c in keycache._USER_COLUMNS.split(",")},
    }
    assert read and all(column in watched[table] for table, column in read), read
