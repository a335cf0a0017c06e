"""A dashboard left open on a PostgreSQL database while another machine's newer release migrates
it (many boxes, the README's upgrade: the boxes are stopped, a `codelace-box admin` in a
terminal is not a box). It went on reading and writing with its own schema in mind: a credit
was written into a schema it does not know. As a box does (503 database_newer), it now does
nothing and says why, and works again once the database is back at its schema. (SQLite
cannot get there: a migrate is refused while the dashboard has the file open.)"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from admin_tui.services import AdminServices
from codelace_box.db.core import close_database
from codelace_box.db.migrate import LATEST_VERSION
from codelace_box.errors import CodelaceError
from tests.admin.pilot import make_env

NEWER = LATEST_VERSION + 1


def test_a_dashboard_does_nothing_on_a_schema_a_newer_release_migrated(
    tmp_path: Path, pg_url: str
) -> None:
    env = make_env(tmp_path, database={"url": pg_url})
    admin = AdminServices(env.config)
    call = admin._call  # the database thread's body, run here
    try:
        call(admin.create_user, "bo@example.com")
        with psycopg.connect(pg_url, autocommit=True) as other:  # the newer release's migrate
            other.execute(
                "INSERT INTO schema_migration (version, name, applied_at) VALUES (%s, %s, now())",
                (NEWER, "from a newer release"),
            )
            with pytest.raises(CodelaceError) as refused:
                call(admin.adjust_balance, "bo@example.com", "3", "gift")
            said = str(refused.value)
            assert f"schema {NEWER}" in said and "newer codelace-box" in said, said
            assert "nothing was done" in said, said
            with pytest.raises(CodelaceError):
                call(admin.users)
            ledger = other.execute("SELECT COUNT(*) FROM ledger_entry").fetchone()
            assert ledger == (0,)
            other.execute("DELETE FROM schema_migration WHERE version = %s", (NEWER,))
        call(admin.adjust_balance, "bo@example.com", "3", "gift")
        assert [u.email for u in call(admin.users)] == ["bo@example.com"]
    finally:
        close_database()
