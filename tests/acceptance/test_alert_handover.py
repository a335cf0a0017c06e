"""The alerts a serve sends are known to whichever process holds the upkeep next (a restarted
serve, another worker): the open alerts are kept in the database, so the new holder neither
sends them once more nor misses what happened while nobody held the upkeep."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.acceptance.cli_tools import Box
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.support import ServerProcess, eventually

pytestmark = pytest.mark.timeout(120)
FAST_TICK = {"CODELACE_UPKEEP_TICK_SEC": "0.2"}
NO_KEY = "provider solo has no working key"
BACKUP = "scheduled backup failed"
OUT = "taken out of rotation"


def _count(hook: WebhookReceiver, words: str) -> int:
    return sum(words in text for text in hook.texts())


def test_a_restarted_serve_does_not_send_the_open_alerts_again(
    tmp_path: Path, hook: WebhookReceiver
) -> None:
    """A provider with no working key and a failing scheduled backup were alerted; serve was
    restarted (a deploy) with both still so: the new serve sent both again at once, and never
    told of a key that left the rotation while it was stopped."""
    box = Box.create(
        tmp_path / "box",
        alerts={"webhook_url": hook.url},
        backup={"every_hours": 1, "dir": "blocker/backups"},
    )
    (box.root / "blocker").write_text("a file where the backup folder should be")
    box.ok("providers", "add", "solo", "--kind", "openai", "--key", "sk-handover-solo-01")
    box.ok("providers", "add", "duo", "--kind", "openai", "--key", "sk-handover-duo-001")
    box.ok("providers", "key-add", "duo", "--key", "sk-handover-duo-002")
    server = ServerProcess(box.config, box.port, env=FAST_TICK).start()
    try:
        time.sleep(1)  # the upkeep's first look
        box.sql("UPDATE provider_key SET failing = 1, failure_reason = 'HTTP 401' WHERE id = 1")
        eventually(lambda: _count(hook, NO_KEY) and _count(hook, BACKUP), "the alerts")
        # and their rows: a serve stopped between an alert's send and its row leaves the next
        # one to send it again (at least once, README), which is not what this test is about
        rows = {("provider", "solo"), ("key", "1"), ("backup", "")}
        kept = "SELECT kind, subject FROM open_alert"
        eventually(lambda: rows <= set(box.sql(kept)), "the alerts' rows")
    finally:
        assert server.stop() == 0
    box.sql("UPDATE provider_key SET failing = 1, failure_reason = 'HTTP 401' WHERE id = 2")
    server = ServerProcess(box.config, box.port, env=FAST_TICK).start()
    try:
        eventually(lambda: _count(hook, "provider key 2 ") == 1, "the key failed meanwhile")
        time.sleep(1.5)  # several ticks of the new holder, nothing changed
    finally:
        assert server.stop() == 0
    for words in (NO_KEY, BACKUP, "provider key 1 ", "provider key 2 "):
        assert _count(hook, words) == 1, (words, hook.texts())
    assert _count(hook, "no working key") == 1, hook.texts()  # duo keeps key 3


REFUSE = (
    "CREATE TRIGGER refuse_open_alert BEFORE INSERT ON open_alert "
    "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
)


def test_an_alert_the_database_did_not_take_is_kept_once_it_takes_writes_again(
    tmp_path: Path, hook: WebhookReceiver
) -> None:
    """A key left the rotation while the database refused writes (its disk full: here a
    trigger refuses open_alert's rows); the alert went out and its row was kept in the process
    'to be written at a later tick'. But it was written only with the next alert: the
    database taking writes again and nothing new to say, it never was, and the serve that
    came next (a restart, another worker) sent the alert again."""
    box = Box.create(tmp_path / "box", alerts={"webhook_url": hook.url})
    box.ok("providers", "add", "duo", "--kind", "openai", "--key", "sk-refused-duo-001")
    box.ok("providers", "key-add", "duo", "--key", "sk-refused-duo-002")
    box.sql(REFUSE)
    server = ServerProcess(box.config, box.port, env=FAST_TICK).start()
    try:
        box.sql("UPDATE provider_key SET failing = 1, failure_reason = 'HTTP 401' WHERE id = 2")
        eventually(lambda: _count(hook, "provider key 2 ") == 1, "the key's alert")
        time.sleep(0.5)  # a few ticks refused
        box.sql("DROP TRIGGER refuse_open_alert")
        eventually(lambda: box.sql("SELECT kind, subject FROM open_alert") == [("key", "2")],
                   "the alert kept once the database takes it")  # fmt: skip
    finally:
        assert server.stop() == 0
    log = server.log_text()
    assert log.count("keeping the open alerts in the database failed") == 1, log
    assert log.count("keeping the open alerts in the database works again") == 1, log
    server = ServerProcess(box.config, box.port, env=FAST_TICK).start()
    try:
        time.sleep(1.5)  # several ticks of the new holder, nothing changed
    finally:
        assert server.stop() == 0
    assert _count(hook, "provider key 2 ") == 1, hook.texts()


def test_a_serve_without_a_webhook_forgets_the_open_alerts(
    tmp_path: Path, hook: WebhookReceiver
) -> None:
    """alerts.webhook_url removed (alerts off), the open_alert rows stayed; the webhook set
    again weeks later, the first serve said 'the error rate recovered' of an alert long gone.
    A serve with alerts off clears them: nothing it does not send can be followed up."""
    from datetime import UTC, datetime, timedelta

    from codelace_box.db.timestamps import db_time

    off = Box.create(tmp_path / "box")
    off.ok("users", "create", "al@handover.test")
    sent = db_time(datetime.now(UTC) - timedelta(days=20))
    off.sql("INSERT INTO open_alert (kind, subject, sent_at) VALUES ('error_rate', '', ?)", (sent,))
    server = ServerProcess(off.config, off.port, env=FAST_TICK).start()
    try:
        eventually(lambda: off.sql("SELECT * FROM open_alert") == [], "the rows cleared")
    finally:
        assert server.stop() == 0
    on = Box.create(tmp_path / "box", alerts={"webhook_url": hook.url})
    server = ServerProcess(on.config, on.port, env=FAST_TICK).start()
    try:
        time.sleep(1.0)  # several ticks: nothing to say
    finally:
        assert server.stop() == 0
    assert hook.texts() == []
