"""What a running serve does for the operator in the background, from outside: scheduled
online backups (the oldest beyond backup.keep removed; doctor reports the newest one's age)
and alerts to a Slack-compatible webhook on a local receiver (rate-limited)."""

from __future__ import annotations

import shutil
import subprocess
import time
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import pytest

from tests.acceptance.cli_tools import Box
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.support import ServerProcess, eventually

pytestmark = pytest.mark.timeout(120)
FAST_TICK = {"CODELACE_UPKEEP_TICK_SEC": "0.2"}


def test_serve_takes_scheduled_backups_and_keeps_the_newest(tmp_path: Path) -> None:
    box = Box.create(tmp_path / "box", backup={"every_hours": 1, "keep": 2})
    box.ok("users", "create", "ana@upkeep.test")
    folder = box.root / "data" / "backups"
    folder.mkdir(parents=True)
    for stamp in ("20260101T000000Z", "20260102T000000Z", "20260103T000000Z"):
        (folder / f"codelace-{stamp}.db").write_bytes(b"an old backup")
    (folder / "by-hand.db").write_bytes(b"not ours")
    server = ServerProcess(box.config, box.port, env=FAST_TICK).start()
    try:
        eventually(lambda: len(list(folder.glob("codelace-*.db"))) == 2, "the rotation")
    finally:
        assert server.stop() == 0
    names = sorted(p.name for p in folder.glob("codelace-*.db"))
    assert names[0] == "codelace-20260103T000000Z.db" and names[1] > names[0]
    assert (folder / "by-hand.db").exists(), "only scheduled backups are rotated"
    fresh = folder / names[1]
    assert fresh.stat().st_mode & 0o777 == 0o600
    restored = box.ok("restore", str(fresh))  # a real, checked copy of the database
    assert "restored" in restored and "ana@upkeep.test" in box.ok("users", "list")
    doctor = box.ok("doctor").splitlines()[-1]
    assert doctor.startswith(f"backups: newest {names[1]}, 0 h 0 min old"), doctor
    assert "every 1 h" in doctor


def test_a_backup_cut_off_by_a_killed_serve_leaves_no_copy_behind(tmp_path: Path) -> None:
    """A serve killed while it wrote a scheduled backup (systemd's kill after TimeoutStopSec
    on a big database, a crash, the OOM killer) left `codelace-<time>.db.partial`, the size of
    the database, in backup.dir for good: no later backup removed it (the rotation counts only
    finished ones), so each such stop took that much more of the disk. The next scheduled
    backup removes its own unfinished copies; any other file stays."""
    box = Box.create(tmp_path / "box", backup={"every_hours": 1, "keep": 2})
    box.ok("users", "create", "di@upkeep.test")
    folder = box.root / "data" / "backups"
    folder.mkdir(parents=True)
    cut_off = folder / "codelace-20260101T000000Z.db.partial"
    cut_off.write_bytes(b"the first pages of a copy" * 1000)
    mine = folder / "by-hand.db.partial"
    mine.write_bytes(b"not ours")
    server = ServerProcess(box.config, box.port, env=FAST_TICK).start()
    try:
        eventually(lambda: list(folder.glob("codelace-*.db")), "a backup")
    finally:
        assert server.stop() == 0
    assert not cut_off.exists(), sorted(p.name for p in folder.iterdir())
    assert mine.exists(), "only the scheduled backups' own copies are removed"


def test_a_file_named_like_a_backup_but_no_date_is_not_one(tmp_path: Path) -> None:
    """A file in backup.dir named codelace-<8 digits>T<6 digits>Z.db whose digits are no date
    (hour 25, month 13: another script's naming) stopped everything that reads the folder:
    doctor printed its ok line, then 'unexpected ValueError' and exit 1, and no scheduled
    backup was ever taken again. It is not one of ours: left alone, like any other file."""
    box = Box.create(tmp_path / "box", backup={"every_hours": 1, "keep": 1})
    box.ok("users", "create", "flo@upkeep.test")
    folder = box.root / "data" / "backups"
    folder.mkdir(parents=True)
    odd = folder / "codelace-20261399T250000Z.db"
    odd.write_bytes(b"not a date")
    assert (
        box.ok("doctor").splitlines()[-1].startswith(f"backups: no scheduled backup in {folder} ")
    )
    server = ServerProcess(box.config, box.port, env=FAST_TICK).start()
    try:
        eventually(lambda: len(list(folder.glob("codelace-*.db"))) == 2, "a backup")
    finally:
        assert server.stop() == 0
    assert odd.exists() and "Traceback" not in server.log_text()


def test_a_backup_named_ahead_of_the_clock_does_not_stop_the_backups(tmp_path: Path) -> None:
    """A backup taken while the clock ran ahead (a VM's clock set right later) counted as the
    newest: no backup was due until the clock reached its name, doctor called it 0 min old,
    and with keep = 1 each new backup was the one rotated away."""
    box = Box.create(tmp_path / "box", backup={"every_hours": 1, "keep": 1})
    box.ok("users", "create", "cy@upkeep.test")
    folder = box.root / "data" / "backups"
    folder.mkdir(parents=True)
    ahead = folder / f"codelace-{datetime.now(UTC).year + 1}0101T000000Z.db"
    ahead.write_bytes(b"taken while the clock was a year ahead")
    server = ServerProcess(box.config, box.port, env=FAST_TICK).start()
    try:
        eventually(lambda: len(list(folder.glob("codelace-*.db"))) == 2, "a backup now")
    finally:
        assert server.stop() == 0
    [taken] = set(folder.glob("codelace-*.db")) - {ahead}
    assert ahead.exists(), "a file ahead of the clock is the operator's to judge"
    doctor = box.ok("doctor").splitlines()[-1]
    assert doctor.startswith(f"backups: newest {taken.name}, 0 h 0 min old"), doctor
    assert doctor.endswith(" - 1 named after now (was the clock ahead?)"), doctor


def test_alerts_reach_the_webhook_once_per_kind(tmp_path: Path, hook: WebhookReceiver) -> None:
    box = Box.create(
        tmp_path / "box",
        alerts={"webhook_url": hook.url, "error_rate": 0.2},
        backup={"every_hours": 1, "dir": "blocker/backups"},
    )
    (box.root / "blocker").write_text("a file where the backup folder should be")
    box.ok("providers", "add", "solo", "--kind", "openai", "--key", "sk-upkeep-solo-0001")
    box.ok("models", "set", "solo/m", "--input-per-1m", "1", "--output-per-1m", "1")
    box.ok("users", "create", "bo@upkeep.test")
    server = ServerProcess(box.config, box.port, env=FAST_TICK).start()
    try:
        eventually(lambda: any("scheduled backup failed" in t for t in hook.texts()), "backup")
        box.sql("UPDATE provider_key SET failing = 1, failure_reason = 'HTTP 401'")
        eventually(lambda: any("taken out of rotation" in t for t in hook.texts()), "key alert")
        eventually(lambda: any("no working key" in t for t in hook.texts()), "provider alert")
        user = box.sql('SELECT id FROM "user"')[0][0]
        for n in range(12):
            box.sql(
                "INSERT INTO usage_record (request_id, user_id, model, provider, upstream_model,"
                " input_tokens, output_tokens, input_per_1m_nanos, output_per_1m_nanos,"
                " cost_nanos, status, error_code, stream, estimated, duration_ms, created_at)"
                " VALUES (?, ?, 'solo/m', 'solo', 'm', 0, 0, 0, 0, 0, ?, ?, 0, 0, 5,"
                " strftime('%Y-%m-%d %H:%M:%f', 'now'))",
                (f"req_upkeep_{n}", user, "error" if n < 6 else "ok",
                 "upstream_error" if n < 6 else None),
            )  # fmt: skip
        # what each settlement adds to the minute rollup the window is read from (the rows above
        # were written by hand, not settled)
        box.sql(
            "INSERT INTO usage_rollup (period, bucket, model, requests, errors, input_tokens,"
            " output_tokens, cache_read_tokens, cache_write_tokens, cost_nanos) VALUES ('minute',"
            " strftime('%Y-%m-%d %H:%M', 'now'), 'solo/m', 12, 6, 0, 0, 0, 0, 0)"
        )
        eventually(lambda: any("requests (50%) failed" in t for t in hook.texts()), "error rate")
        time.sleep(1.5)  # several more ticks: the same alerts are not sent again
    finally:
        assert server.stop() == 0
    texts = hook.texts()
    assert all(t.startswith("codelace-box: ") for t in texts)
    for words in (
        "scheduled backup failed",
        "taken out of rotation",
        "no working key",
        "failed in",
    ):
        assert sum(words in t for t in texts) == 1, (words, texts)
    assert "sk-upkeep-solo-0001" not in "".join(texts) and hook.url not in server.log_text()


def _minute_of_traffic(box: Box, requests: int, errors: int, model: str = "solo/m") -> None:
    """What settlements add to this minute's rollup (the error rate's window is read from it)."""
    box.sql(
        "INSERT INTO usage_rollup (period, bucket, model, requests, errors, input_tokens,"
        " output_tokens, cache_read_tokens, cache_write_tokens, cost_nanos) VALUES ('minute',"
        " strftime('%Y-%m-%d %H:%M', 'now'), ?, ?, ?, 0, 0, 0, 0, 0) ON CONFLICT DO"
        " UPDATE SET requests = requests + excluded.requests, errors = errors + excluded.errors",
        (model, requests, errors),
    )


def _alerting_box(tmp_path: Path, hook: WebhookReceiver) -> tuple[Box, ServerProcess]:
    """A serving box of one provider and model whose error-rate alerts (over 0.2) go to hook."""
    box = Box.create(tmp_path / "box", alerts={"webhook_url": hook.url, "error_rate": 0.2})
    box.ok("providers", "add", "solo", "--kind", "openai", "--key", "sk-upkeep-solo-0001")
    box.ok("models", "set", "solo/m", "--input-per-1m", "1", "--output-per-1m", "1")
    return box, ServerProcess(box.config, box.port, env=FAST_TICK).start()


def test_an_error_rate_that_falls_back_is_said_once(tmp_path: Path, hook: WebhookReceiver) -> None:
    """The error-rate alert fired, then the rate fell back under alerts.error_rate: nothing
    told the operator, who could only guess whether it still failed. One notice says it
    recovered, kept and sent once the webhook answers, as the alerts are; a new rise alerts
    again at once."""
    box, server = _alerting_box(tmp_path, hook)
    try:
        _minute_of_traffic(box, 12, 6)
        eventually(lambda: any("requests (50%) failed" in t for t in hook.texts()), "alert")
        hook.refuse_with = 500  # the webhook is down as the rate falls back
        _minute_of_traffic(box, 108, 0)  # 6 of 120: 5%
        time.sleep(1.0)
        hook.refuse_with = None
        eventually(lambda: any("recovered" in t for t in hook.texts()), "recovery notice")
        time.sleep(1.5)  # several more ticks: it is said once
        assert sum("recovered" in t for t in hook.texts()) == 1, hook.texts()
        _minute_of_traffic(box, 120, 120)  # 126 of 240 fail again
        eventually(lambda: any("requests (52%) failed" in t for t in hook.texts()), "again")
    finally:
        assert server.stop() == 0
    texts = hook.texts()
    assert sum("recovered" in t for t in texts) == 1, texts
    notice = next(t for t in texts if "recovered" in t)
    assert "6 of the last 120 requests (5%)" in notice, notice


def test_an_error_rate_alert_is_not_ended_while_the_few_requests_left_still_fail(
    tmp_path: Path, hook: WebhookReceiver
) -> None:
    """The error-rate alert went out, then traffic thinned below the 10 requests an alert needs
    while every request still failed: the box said "the error rate recovered: 9 of the last 9
    requests (100%) failed", and alerted again at once when a few more came in (an alert and a
    "recovered" each time the count crossed 10, while nothing had recovered). Too few requests
    raise no alert, but an open one ends only once no more than alerts.error_rate of them fail."""
    box, server = _alerting_box(tmp_path, hook)
    try:
        _minute_of_traffic(box, 12, 6)
        eventually(lambda: any("requests (50%) failed" in t for t in hook.texts()), "alert")
        _minute_of_traffic(box, 9, 9, model="solo/n")
        box.sql(  # the first minute's requests leave the 5 minutes: 9 left, all failed
            "UPDATE usage_rollup SET bucket = strftime('%Y-%m-%d %H:%M', 'now', '-10 minutes')"
            " WHERE model = 'solo/m'"
        )
        time.sleep(1.5)  # several ticks
        assert not any("recovered" in t for t in hook.texts()), hook.texts()
        _minute_of_traffic(box, 3, 3, model="solo/n")  # 12 of 12 fail: still the same alert
        time.sleep(1.0)
        assert sum("failed in 5 minutes" in t for t in hook.texts()) == 1, hook.texts()
        _minute_of_traffic(box, 48, 0, model="solo/n")  # 12 of 60: 20%, back to the limit
        eventually(lambda: any("recovered" in t for t in hook.texts()), "recovery notice")
        time.sleep(1.0)
    finally:
        assert server.stop() == 0
    texts = hook.texts()
    assert sum("recovered" in t for t in texts) == 1, texts
    assert "12 of the last 60 requests (20%)" in next(t for t in texts if "recovered" in t)


def test_an_error_rate_alert_is_not_ended_by_traffic_stopping(
    tmp_path: Path, hook: WebhookReceiver
) -> None:
    """Every request failed, then no more came (the clients gave up on the failing upstream):
    five minutes later the webhook got "the error rate recovered: 0 of the last 0 requests (0%)
    failed", though nothing had been seen to work, and the next failures raised nothing until
    10 of them had come. With no request in the 5 minutes the alert stays open; requests that
    succeed end it."""
    box = Box.create(tmp_path / "box", alerts={"webhook_url": hook.url, "error_rate": 0.2})
    box.ok("providers", "add", "solo", "--kind", "openai", "--key", "sk-upkeep-solo-0001")
    server = ServerProcess(box.config, box.port, env=FAST_TICK).start()
    try:
        _minute_of_traffic(box, 12, 12)
        eventually(lambda: any("requests (100%) failed" in t for t in hook.texts()), "alert")
        box.sql(  # its requests leave the 5 minutes, and none come after them
            "UPDATE usage_rollup SET bucket = strftime('%Y-%m-%d %H:%M', 'now', '-10 minutes')"
        )
        time.sleep(1.5)  # several ticks
        assert not any("recovered" in t for t in hook.texts()), hook.texts()
        _minute_of_traffic(box, 10, 0, model="solo/n")
        eventually(lambda: any("recovered" in t for t in hook.texts()), "recovery notice")
    finally:
        assert server.stop() == 0
    notice = next(t for t in hook.texts() if "recovered" in t)
    assert "0 of the last 10 requests (0%)" in notice, notice


def test_a_serve_started_after_the_alert_says_the_error_rate_recovered(
    tmp_path: Path, hook: WebhookReceiver
) -> None:
    """The error-rate alert went out, then serve was restarted (or another worker took the
    upkeep over): the new holder did not know the alert was open and never said the rate had
    fallen back. The open alert is kept in the database: it is said once, and the alert is
    not sent again by the new holder while the rate stays high."""
    box = Box.create(tmp_path / "box", alerts={"webhook_url": hook.url, "error_rate": 0.2})
    box.ok("providers", "add", "solo", "--kind", "openai", "--key", "sk-upkeep-solo-0001")
    server = ServerProcess(box.config, box.port, env=FAST_TICK).start()
    try:
        _minute_of_traffic(box, 12, 6)
        eventually(lambda: any("requests (50%) failed" in t for t in hook.texts()), "alert")
        kept = "SELECT kind FROM open_alert"  # sent, then kept: a stop between sends it again
        eventually(lambda: box.sql(kept) == [("error_rate",)], "the alert's row")
    finally:
        assert server.stop() == 0
    server = ServerProcess(box.config, box.port, env=FAST_TICK).start()
    try:
        time.sleep(1.0)  # several ticks of the new holder, the rate still high
        assert sum("failed in 5 minutes" in t for t in hook.texts()) == 1, hook.texts()
        _minute_of_traffic(box, 108, 0)  # 6 of 120: 5%
        eventually(lambda: any("recovered" in t for t in hook.texts()), "recovery notice")
        time.sleep(1.0)
    finally:
        assert server.stop() == 0
    assert sum("recovered" in t for t in hook.texts()) == 1, hook.texts()


def test_a_failing_scheduled_backup_is_logged_once_and_tried_again_less_often(
    tmp_path: Path,
) -> None:
    """A scheduled backup that cannot be written (backup.dir on a disk gone read-only, a quota
    that cuts the copy off) was tried again at every tick (30 s) and logged an ERROR line each
    time: 2,880 a day, and for a copy cut off midway a copy of the whole database every 30 s.
    It is tried again every 10 ticks, its failure logged once while the reason stays the same;
    it works again by itself once the folder can be written. Doctor exited 0 meanwhile (its
    last line 'backups: no scheduled backup in ...'): it fails naming the failure while it lasts."""
    box = Box.create(tmp_path / "box", backup={"every_hours": 1, "dir": "blocker/backups"})
    box.ok("users", "create", "ed@upkeep.test")
    blocker = box.root / "blocker"
    blocker.write_text("a file where the backup folder should be")
    server = ServerProcess(box.config, box.port, env=FAST_TICK).start()
    try:
        began = time.monotonic()
        server.wait_for_log("the scheduled backup failed")  # (late on a loaded machine)
        time.sleep(max(0.0, began + 4 - time.monotonic()))  # 20 ticks
        failed = server.log_text().count("the scheduled backup failed")
        doctor = box.cli("doctor")
        blocker.unlink()
        eventually(lambda: list((blocker / "backups").glob("codelace-*.db")), "a backup", 30)
    finally:
        assert server.stop() == 0
    assert failed == 1, f"the failing backup was logged {failed} times in 20 ticks"
    assert "scheduled backup written to" in server.log_text()
    assert doctor.returncode == 1, doctor.stdout
    assert "MISMATCH backups: the last scheduled backup failed at " in doctor.stdout, doctor
    assert "doctor found 1 problem(s)" in doctor.stderr
    assert box.ok("doctor").splitlines()[-1].startswith("backups: newest codelace-")


def test_doctor_fails_when_no_backup_was_taken_for_two_intervals(tmp_path: Path) -> None:
    """Backups on, and the newest two intervals old (serve stopped, its upkeep never leading):
    doctor said OVERDUE and exited 0, as it did with none at all in a database older than
    that. Both fail it; a new database with none yet (serve not started) does not."""
    box = Box.create(tmp_path / "box", backup={"every_hours": 1})
    box.ok("users", "create", "gus@upkeep.test")
    assert box.ok("doctor").splitlines()[-1].startswith("backups: no scheduled backup in ")
    box.sql("UPDATE schema_migration SET applied_at = '2026-01-01 00:00:00'")
    none = box.cli("doctor")
    assert none.returncode == 1, none.stdout
    assert (
        "MISMATCH backups: no scheduled backup in " in none.stdout and "OVERDUE" in none.stdout
    ), none
    folder = box.root / "data" / "backups"
    folder.mkdir(parents=True)
    (folder / "codelace-20260101T000000Z.db").write_bytes(b"an old backup")
    old = box.cli("doctor")
    assert old.returncode == 1, old.stdout
    assert "MISMATCH backups: newest codelace-20260101T000000Z.db" in old.stdout, old
    assert "OVERDUE" in old.stdout


def test_doctor_after_a_restore_counts_the_two_intervals_from_the_restore(
    tmp_path: Path,
) -> None:
    """A database restored on a machine with no scheduled backups yet (the old disk lost, the
    backup copied in from elsewhere): restore says 'next: codelace-box doctor, then start the
    service', and doctor failed it OVERDUE (`is serve running?`) because the restored
    database was made long ago. The two intervals run from the restore (its audit entry), as
    they do from a new database's making; a restore as old as that is OVERDUE again."""
    box = Box.create(tmp_path / "box", backup={"every_hours": 1})
    box.ok("users", "create", "ida@upkeep.test")
    box.sql("UPDATE schema_migration SET applied_at = '2026-01-01 00:00:00'")
    backup = tmp_path / "from-the-old-machine.db"
    box.ok("backup", str(backup))
    restored = box.ok("restore", str(backup))
    assert "next: codelace-box doctor" in restored, restored
    doctor = box.cli("doctor")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert doctor.stdout.splitlines()[-1].startswith("backups: no scheduled backup in "), (
        doctor.stdout
    )
    box.sql("UPDATE audit_log SET created_at = '2026-01-01T00:00:00+00:00'")
    late = box.cli("doctor")
    assert late.returncode == 1 and "OVERDUE" in late.stdout, late.stdout


def test_a_restore_clears_the_failed_backup_marker_of_the_database_it_replaced(
    tmp_path: Path,
) -> None:
    """The old database's scheduled backups failed (its disk full), the operator restores a
    backup: doctor failed the freshly restored box on the old failure (the marker beside the
    database outlived it until the next good backup). A restore clears it; the two intervals
    run from the restore as before."""
    box = Box.create(tmp_path / "box", backup={"every_hours": 1})
    box.ok("users", "create", "ivy@upkeep.test")
    backup = tmp_path / "good.db"
    box.ok("backup", str(backup))
    marker = box.root / "data" / "codelace.db.backup-failed"
    marker.write_text("20260101T000000Z No space left on device\n")
    failing = box.cli("doctor")
    assert failing.returncode == 1 and "the last scheduled backup failed" in failing.stdout
    box.ok("restore", str(backup))
    doctor = box.cli("doctor")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert not marker.exists()


def test_two_boxes_given_one_backup_folder_do_not_take_each_others_backups(
    tmp_path: Path,
) -> None:
    """Two boxes on one machine (production and staging) both set backup.dir to
    /var/backups/codelace: the second took the first's newest backup for its own, so it never
    took one (doctor: 'newest ..., 0 h 0 min old'), and its rotation would have removed the
    other's backups. The folder is the first database's now; the other box says so, in its
    log and its doctor line, and takes and removes nothing there."""
    shared = tmp_path / "shared-backups"
    first = Box.create(tmp_path / "prod", backup={"every_hours": 1, "keep": 1, "dir": str(shared)})
    second = Box.create(
        tmp_path / "stage", backup={"every_hours": 1, "keep": 1, "dir": str(shared)}
    )
    for box in (first, second):
        box.ok("users", "create", "hal@upkeep.test")
    server = ServerProcess(first.config, first.port, env=FAST_TICK).start()
    try:
        eventually(lambda: list(shared.glob("codelace-*.db")), "the first box's backup")
    finally:
        assert server.stop() == 0
    [taken] = shared.glob("codelace-*.db")
    server = ServerProcess(second.config, second.port, env=FAST_TICK).start()
    try:
        eventually(lambda: "another database" in server.log_text(), "the second box's refusal")
    finally:
        assert server.stop() == 0
    assert list(shared.glob("codelace-*.db")) == [taken]
    assert server.log_text().count("another database") == 1, server.log_text()[-2000:]
    doctor = second.cli("doctor")  # the second box's backups fail: so does its doctor
    assert doctor.returncode == 1, doctor.stdout
    [line] = doctor.stdout.splitlines()
    assert line.startswith("MISMATCH backups: the last scheduled backup failed at "), line
    assert f": {shared} holds the scheduled backups of another " in line, line
    assert first.ok("doctor").splitlines()[-1].startswith(f"backups: newest {taken.name}")


def test_two_boxes_of_databases_in_one_folder_each_take_their_backups(tmp_path: Path) -> None:
    """Two boxes on one machine whose databases share a folder (/var/lib/codelace/prod.db and
    staging.db), each with a backup.dir of its own: the upkeep's lead was a lock file named
    after the folder (`upkeep.lock`), so the box started second never led and never took a
    backup (nor alerted, nor re-probed a failing provider key, nor pruned its history); only
    doctor's OVERDUE, two intervals later, said so. Each database's box leads its own jobs."""
    shared = tmp_path / "data"
    boxes = [
        Box.create(tmp_path / name, database={"path": str(shared / f"{name}.db")},
                   backup={"every_hours": 1, "keep": 1, "dir": str(tmp_path / f"{name}-bk")})
        for name in ("prod", "stage")
    ]  # fmt: skip
    servers = []
    try:
        for box in boxes:
            box.ok("users", "create", "ida@upkeep.test")
            servers.append(ServerProcess(box.config, box.port, env=FAST_TICK).start())
        for folder in (tmp_path / "prod-bk", tmp_path / "stage-bk"):
            eventually(partial(_backups_in, folder), f"a backup in {folder.name}")
    finally:
        assert [server.stop() for server in servers] == [0] * len(servers)


def _backups_in(folder: Path) -> list[Path]:
    return list(folder.glob("codelace-*.db"))


def _immutable(path: Path, on: bool) -> bool:
    """chattr +i / -i (root on a file system that has the attribute); False where it cannot."""
    if shutil.which("chattr") is None:
        return False
    flag = "+i" if on else "-i"
    done = subprocess.run(["chattr", flag, str(path)], check=False, capture_output=True)
    return done.returncode == 0


def test_an_old_backup_that_cannot_be_removed_fails_no_backup(
    tmp_path: Path, hook: WebhookReceiver
) -> None:
    """Removing a backup beyond backup.keep failed (a file made immutable, permissions): the
    new backup, written and whole, was reported as 'the scheduled backup failed' (log and
    alert), and tried again and again. It is a warning naming the file; the backup stands."""
    box = Box.create(
        tmp_path / "box", backup={"every_hours": 1, "keep": 1}, alerts={"webhook_url": hook.url}
    )
    folder = box.root / "data" / "backups"
    folder.mkdir(parents=True)
    stuck = folder / "codelace-20260101T000000Z.db"
    stuck.write_bytes(b"an old backup")
    if not _immutable(stuck, True):
        pytest.skip("chattr +i is not available here")
    try:
        server = ServerProcess(box.config, box.port, env=FAST_TICK).start()
        try:
            eventually(lambda: len(list(folder.glob("codelace-*.db"))) == 2, "a backup")
            eventually(lambda: "could not be removed" in server.log_text(), "the warning")
            time.sleep(1.0)  # five more ticks: no failure said, no second backup
        finally:
            assert server.stop() == 0
    finally:
        _immutable(stuck, False)
    log = server.log_text()
    assert f"the old backup {stuck} is beyond backup.keep but could not be removed" in log
    assert "scheduled backup failed" not in log, log
    assert not any("backup failed" in text for text in hook.texts())
    assert len(list(folder.glob("codelace-*.db"))) == 2


def test_a_database_deleted_under_serve_is_alerted_as_gone_not_as_a_new_box(
    tmp_path: Path, hook: WebhookReceiver
) -> None:
    """The database file deleted under a running serve: the scheduled backup alerted it in the
    commands' words, '... or run `codelace-box migrate` to start a new box', advice that throws
    away a running box. It says the file went from under serve, and how to get it back."""
    box = Box.create(tmp_path / "box", alerts={"webhook_url": hook.url}, backup={"every_hours": 1})
    box.ok("users", "create", "di@upkeep.test")
    server = ServerProcess(box.config, box.port, env=FAST_TICK).start()
    try:
        time.sleep(0.6)  # the upkeep's first ticks: nothing to say
        box.db_path.unlink()
        eventually(lambda: any("no database at" in t for t in hook.texts()), "the alert")
    finally:
        assert server.stop() == 0
    [text] = [t for t in hook.texts() if "no database at" in t]
    assert f"no database at {box.db_path} (" in text, text
    assert "went from under the running serve" in text and "restore" in text, text
    assert "start a new box" not in text, text
