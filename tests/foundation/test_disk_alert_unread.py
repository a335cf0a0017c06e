"""The database's disk trouble is alerted even when the database cannot be read: the upkeep
reads the open alerts at each tick's start, and a failed read must not cost the disk alert
(the very trouble that makes the read fail)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.foundation.test_disk_trouble import (  # noqa: F401 (small_disk: a fixture)
    alerting_box,
    disk_full_alert,
    fill,
    small_disk,
    wait_for_a_webhook,
)

pytestmark = pytest.mark.timeout(120)


def test_a_full_disk_is_alerted_once_when_the_open_alerts_cannot_be_read(
    tmp_path: Path,
    small_disk: Path,  # noqa: F811
) -> None:
    """Each tick read open_alert before looking at the disk: with that read failing (here the
    table is renamed away, as a disk gone bad makes reads fail) the tick ended there and the
    full disk was never alerted. Now the tick goes on with what the process knows, and sends
    the alert once, not at every tick."""
    hook, space, server = alerting_box(small_disk, tmp_path)
    try:
        server.start()
        space.sql("ALTER TABLE open_alert RENAME TO open_alert_away")
        time.sleep(0.6)  # ticks whose read fails
        fill(small_disk)
        wait_for_a_webhook(hook, server, 10)
        time.sleep(1.5)  # more ticks: the alert is not sent again
    finally:
        server.stop()
        hook.stop()
    assert hook.texts() == [disk_full_alert(small_disk / "box" / "data")]
    log = server.log_text()
    assert log.count("reading the open alerts from the database failed") == 1, log
