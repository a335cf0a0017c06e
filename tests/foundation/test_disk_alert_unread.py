"""The database's disk trouble is alerted even when the database cannot be read: the upkeep
reads the open alerts at each tick's start, and a failed read must not cost the disk alert
(the very trouble that makes the read fail)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.fakes.webhook_receiver import WebhookReceiver
from tests.foundation.conftest import make_workspace
from tests.foundation.test_disk_trouble import fill, small_disk  # noqa: F401 (a fixture)
from tests.support import ServerProcess, free_port

pytestmark = pytest.mark.timeout(120)


def test_a_full_disk_is_alerted_once_when_the_open_alerts_cannot_be_read(
    tmp_path: Path,
    small_disk: Path,  # noqa: F811
) -> None:
    """Each tick read open_alert before looking at the disk: with that read failing (here the
    table is renamed away, as a disk gone bad makes reads fail) the tick ended there and the
    full disk was never alerted. Now the tick goes on with what the process knows, and sends
    the alert once, not at every tick."""
    hook = WebhookReceiver().start()
    port = free_port()
    space = make_workspace(small_disk / "box", server={"port": port},
                           alerts={"webhook_url": hook.url})  # fmt: skip
    server = ServerProcess(space.config, port, env={"CODELACE_UPKEEP_TICK_SEC": "0.2"})
    server.log_path = tmp_path / "serve.log"
    try:
        server.start()
        space.sql("ALTER TABLE open_alert RENAME TO open_alert_away")
        time.sleep(0.6)  # ticks whose read fails
        fill(small_disk)
        deadline = time.monotonic() + 10
        while not hook.texts():
            assert time.monotonic() < deadline, server.log_text()
            time.sleep(0.1)
        time.sleep(1.5)  # more ticks: the alert is not sent again
    finally:
        server.stop()
        hook.stop()
    folder = small_disk / "box" / "data"
    assert hook.texts() == [
        f"codelace-box: the database's disk is full ({folder}): requests fail with 503 until "
        "there is room"
    ]
    log = server.log_text()
    assert log.count("reading the open alerts from the database failed") == 1, log
