"""The upkeep's tick (upkeep/watch.py): a part that fails does not keep the others from their
turn, and the failure still reaches the log of the tick's caller."""

from __future__ import annotations

from pathlib import Path

import pytest

from codelace_box.config import load_config
from codelace_box.db.core import open_database, utcnow
from codelace_box.db.migrate import migrate
from codelace_box.db.offload import start_db_thread, stop_db_thread
from codelace_box.upkeep.watch import Upkeep
from tests.support import base_sections, write_config


class KeyWatchFails(Upkeep):
    """An upkeep whose key watch raises, as a database read of it may."""

    async def watch_keys(self) -> None:
        raise RuntimeError("the key watch failed")


async def test_a_failing_part_leaves_the_scheduled_backup_its_turn(tmp_path: Path) -> None:
    sections = base_sections(tmp_path)
    if "url" in sections.get("database", {}):
        pytest.skip("scheduled backups are of a SQLite database")
    sections["backup"] = {"every_hours": 1}
    config = load_config(str(write_config(tmp_path / "codelace.toml", sections)))
    migrate(open_database(config.database.target))
    upkeep = KeyWatchFails(config, tick_sec=0.1)
    start_db_thread()
    try:
        with pytest.raises(RuntimeError, match="the key watch failed"):
            await upkeep.tick(utcnow())
    finally:
        stop_db_thread()
        upkeep.lead.release()
    backups = list((config.data_dir / "backups").glob("codelace-*.db"))
    assert len(backups) == 1, "the backup due came after the failed part, in the same tick"
