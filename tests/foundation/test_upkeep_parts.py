"""The upkeep's tick (upkeep/watch.py): a part that fails does not keep the others from their
turn, and each part's failure is logged on its own."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from codelace_box.config import load_config
from codelace_box.db.core import open_database, utcnow
from codelace_box.db.lead import lead_file
from codelace_box.db.migrate import migrate
from codelace_box.db.offload import start_db_thread, stop_db_thread
from codelace_box.db.openlock import try_lead
from codelace_box.upkeep.watch import Upkeep
from tests.support import base_sections, write_config


class TwoPartsFail(Upkeep):
    """An upkeep whose key watch and error-rate watch raise, as a database read may."""

    async def watch_keys(self) -> None:
        raise RuntimeError("no keys read")

    async def watch_errors(self, now: datetime) -> None:
        raise OSError("no rate read")


async def test_a_failing_part_leaves_the_scheduled_backup_its_turn(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sections = base_sections(tmp_path)
    if "url" in sections.get("database", {}):
        pytest.skip("scheduled backups are of a SQLite database")
    sections["backup"] = {"every_hours": 1}
    config = load_config(str(write_config(tmp_path / "codelace.toml", sections)))
    migrate(open_database(config.database.target))
    upkeep = TwoPartsFail(config, tick_sec=0.1)
    start_db_thread()
    try:
        await upkeep.tick(utcnow())
        await upkeep.tick(utcnow())  # the same failures again: said once while they last
    finally:
        stop_db_thread()
        upkeep.lead.release()
    backups = list((config.data_dir / "backups").glob("codelace-*.db"))
    assert len(backups) == 1, "the backup due came after the failed part, in the same tick"
    said = [r.getMessage() for r in caplog.records if r.name == "codelace_box.upkeep"]
    failed = [line for line in said if " failed: " in line]
    assert len(failed) == 2, said
    assert "the upkeep's key watch failed: RuntimeError: no keys read" in failed[0], failed
    assert "the upkeep's error-rate watch failed: OSError: no rate read" in failed[1], failed


def test_boxes_of_two_postgresql_databases_from_one_folder_each_lead(tmp_path: Path) -> None:
    """Two boxes on one machine, configs side by side in one folder (prod.toml, staging.toml),
    each on a PostgreSQL database of its own: their data folder is the same (database.path's,
    unset), and the lock electing the process that runs the upkeep, the key probes and the
    history pruning was named after that folder, so one box ran them and the other never did
    (its failing provider keys never probed back into rotation, no alert). The lock is named
    after the database (not its password: the same database under a new one is the same)."""
    folder = tmp_path / "configs"
    folder.mkdir()
    configs = []
    for name, url in (("prod", "postgresql://box:pw@db:5432/prod"),
                      ("staging", "postgresql://box:pw@db:5432/staging"),
                      ("prod-again", "postgresql://box:other@db:5432/prod")):  # fmt: skip
        sections = {"server": {"secret_key": "k" * 40}, "database": {"url": url}}
        configs.append(load_config(str(write_config(folder / f"{name}.toml", sections))))
    files = [lead_file(config.database, "upkeep") for config in configs]
    held = [try_lead(path) for path in files[:2]]
    try:
        assert all(held), files
    finally:
        for marker in held:
            if marker is not None:
                marker.release()
    assert files[2] == files[0] and "pw" not in files[0].name
