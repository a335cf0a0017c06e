"""Boxes sharing one PostgreSQL database send each alert once, not once a box: one box leads
the upkeep (a session advisory lock), and when it stops another box takes the lead."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from tests.fakes.webhook_receiver import WebhookReceiver
from tests.pg_cluster import SHARED_SECRET
from tests.support import ServerProcess, free_port, run_cli, write_config

pytestmark = pytest.mark.timeout(120)
FAST_TICK = {"CODELACE_UPKEEP_TICK_SEC": "0.2"}
OUT_OF_ROTATION = "taken out of rotation"


def _box(
    folder: Path, pg_url: str, hook: WebhookReceiver, **alerts: float
) -> tuple[Path, ServerProcess]:
    """A box on the shared database, alerting to `hook` (and `alerts`: more [alerts] keys)."""
    port = free_port()
    sections = {
        "server": {"host": "127.0.0.1", "port": port, "secret_key": SHARED_SECRET},
        "database": {"path": str(folder / "data" / "codelace.db"), "url": pg_url},
        "alerts": {"webhook_url": hook.url, **alerts},
    }
    folder.mkdir()
    config = write_config(folder / "codelace.toml", sections)
    return config, ServerProcess(config, port, env=FAST_TICK)


def _cli(config: Path, *args: str) -> None:
    result = run_cli(config, *args)
    assert result.returncode == 0, f"{args}: {result.stderr}"


def _count(hook: WebhookReceiver, words: str) -> int:
    return sum(words in text for text in hook.texts())


def _eventually(check: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for: {what}"
        time.sleep(0.1)


def _fail_keys_of(pg_url: str, provider: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE provider_key SET failing = 1, failure_reason = 'HTTP 401' WHERE provider_id ="
            " (SELECT id FROM provider WHERE name = %s)",
            (provider,),
        )


def test_each_alert_is_sent_once_by_the_box_that_leads(
    tmp_path: Path, pg_url: str, hook: WebhookReceiver
) -> None:
    first_config, first = _box(tmp_path / "first", pg_url, hook)
    second_config, second = _box(tmp_path / "second", pg_url, hook)
    _cli(first_config, "providers", "add", "solo", "--kind", "openai", "--key", "sk-lead-0001")
    first.start()
    try:
        second.start()
        time.sleep(0.6)  # both boxes tick and have looked at the keys
        _fail_keys_of(pg_url, "solo")
        _eventually(lambda: _count(hook, "provider solo has no working key") == 1, "an alert")
        time.sleep(1.5)  # many more ticks of both boxes: nobody sends it again
        assert _count(hook, OUT_OF_ROTATION) == 1, hook.texts()
        assert _count(hook, "provider solo has no working key") == 1, hook.texts()
        assert first.stop() == 0  # it led: it was the first to ask
        _cli(second_config, "providers", "add", "duo", "--kind", "openai", "--key", "sk-lead-02")
        _fail_keys_of(pg_url, "duo")
        _eventually(lambda: _count(hook, "provider duo has no working key") == 1, "the next lead")
    finally:
        first.stop()
        second.stop()


def _minute_of_traffic(pg_url: str, requests: int, errors: int) -> None:
    """What settlements add to this minute's rollup (the error rate's window is read from it)."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO usage_rollup (period, bucket, model, requests, errors, input_tokens,"
            " output_tokens, cache_read_tokens, cache_write_tokens, cost_nanos) VALUES ('minute',"
            " to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'), 'solo/m', %s, %s, 0, 0,"
            " 0, 0, 0) ON CONFLICT (period, bucket, model) DO UPDATE SET requests ="
            " usage_rollup.requests + excluded.requests, errors = usage_rollup.errors +"
            " excluded.errors",
            (requests, errors),
        )


def _error_rate_boxes(
    tmp_path: Path, pg_url: str, hook: WebhookReceiver
) -> tuple[ServerProcess, ServerProcess]:
    """Two boxes on the shared database (not started), alerting when over 20% of the requests
    fail: the first and the second."""
    _, first = _box(tmp_path / "first", pg_url, hook, error_rate=0.2)
    _, second = _box(tmp_path / "second", pg_url, hook, error_rate=0.2)
    return first, second


def test_the_box_that_takes_the_lead_says_the_error_rate_recovered(
    tmp_path: Path, pg_url: str, hook: WebhookReceiver
) -> None:
    """The box that led sent the error-rate alert and stopped; the box that took the lead
    did not know an alert was open, so the rate's fall was never told (and, while it stayed
    high, the alert went out a second time). The open alert is kept in the database: the new
    lead neither repeats it nor forgets its recovery."""
    first, second = _error_rate_boxes(tmp_path, pg_url, hook)
    first.start()
    try:
        second.start()
        _minute_of_traffic(pg_url, 12, 6)
        _eventually(lambda: _count(hook, "requests (50%) failed") == 1, "the alert")
        # and its row (written just after the webhook's answer): this test is about the box
        # that takes the lead, not about a box stopped in between (the test below)
        kept = "SELECT 1 FROM open_alert WHERE kind = 'error_rate'"
        _eventually(lambda: bool(_sql(pg_url, kept)), "its open alert kept")
        assert first.stop() == 0  # it led: it was the first to ask
        time.sleep(1.5)  # the second box leads now, the rate still high: not said again
        assert _count(hook, "failed in 5 minutes") == 1, hook.texts()
        _minute_of_traffic(pg_url, 108, 0)  # 6 of 120: 5%
        _eventually(lambda: _count(hook, "recovered") == 1, "the recovery notice")
        time.sleep(1.0)
        assert _count(hook, "recovered") == 1, hook.texts()
    finally:
        first.stop()
        second.stop()


def test_the_box_that_takes_the_lead_does_not_send_the_open_alerts_again(
    tmp_path: Path, pg_url: str, hook: WebhookReceiver
) -> None:
    """The box that led alerted a provider with no working key, and stopped; the box that
    took the lead knew nothing of it and sent it again at its first look. The open alerts
    are kept in the database, every kind, not only the error rate."""
    first_config, first = _box(tmp_path / "first", pg_url, hook)
    second_config, second = _box(tmp_path / "second", pg_url, hook)
    _cli(first_config, "providers", "add", "solo", "--kind", "openai", "--key", "sk-lead-0001")
    first.start()
    try:
        second.start()
        _fail_keys_of(pg_url, "solo")
        _eventually(lambda: _count(hook, "provider solo has no working key") == 1, "an alert")
        kept = "SELECT 1 FROM open_alert WHERE kind = 'provider' AND subject = 'solo'"
        _eventually(lambda: bool(_sql(pg_url, kept)), "its open alert kept")  # (sent, then kept)
        assert first.stop() == 0  # it led: it was the first to ask
        _cli(second_config, "providers", "add", "duo", "--kind", "openai", "--key", "sk-lead-02")
        _fail_keys_of(pg_url, "duo")
        _eventually(lambda: _count(hook, "provider duo has no working key") == 1, "the next lead")
        time.sleep(1.0)  # more ticks of the new lead
        assert _count(hook, "provider solo has no working key") == 1, hook.texts()
        assert _count(hook, OUT_OF_ROTATION) == 2, hook.texts()
    finally:
        first.stop()
        second.stop()


def _sql(pg_url: str, statement: str) -> list[tuple[object, ...]]:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        cursor = conn.execute(statement)
        return cursor.fetchall() if cursor.description else []


REFUSE = (
    "CREATE FUNCTION refuse_alert() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'could not extend file: No space left on device'; END $$; "
    "CREATE TRIGGER refuse_open_alert BEFORE INSERT ON open_alert "
    "FOR EACH ROW EXECUTE FUNCTION refuse_alert()"
)


def test_an_alert_the_database_refused_is_known_to_the_next_lead(
    tmp_path: Path, pg_url: str, hook: WebhookReceiver
) -> None:
    """The leading box alerted a key while PostgreSQL refused the open alert's row (its disk
    full: a trigger here); once it took writes again the row was never written (only with a
    next alert), and the box that took the lead sent the alert again."""
    first_config, first = _box(tmp_path / "first", pg_url, hook)
    _, second = _box(tmp_path / "second", pg_url, hook)
    _cli(first_config, "providers", "add", "duo", "--kind", "openai", "--key", "sk-refused-01")
    _cli(first_config, "providers", "key-add", "duo", "--key", "sk-refused-02")
    _sql(pg_url, REFUSE)
    first.start()
    try:
        second.start()
        _sql(pg_url, "UPDATE provider_key SET failing = 1, failure_reason = 'HTTP 401' "
                     "WHERE id = (SELECT min(id) FROM provider_key)")  # fmt: skip
        _eventually(lambda: _count(hook, OUT_OF_ROTATION) == 1, "the key's alert")
        time.sleep(0.5)  # ticks refused
        _sql(pg_url, "DROP TRIGGER refuse_open_alert ON open_alert")
        _eventually(lambda: len(_sql(pg_url, "SELECT kind FROM open_alert")) == 1, "its row")
        assert first.stop() == 0  # it led: it was the first to ask
        time.sleep(1.5)  # the second box leads: it knows the alert went out
        assert _count(hook, OUT_OF_ROTATION) == 1, hook.texts()
    finally:
        first.stop()
        second.stop()


UPKEEP_LED = (
    "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 2 AND "
    "classid = 20261203::oid AND objid = (hashtext('upkeep')::bigint & 4294967295)::oid"
)


def test_a_box_stopped_while_its_alert_goes_out_keeps_it_for_the_next_lead(
    tmp_path: Path, pg_url: str, hook: WebhookReceiver
) -> None:
    """The leading box was stopped (SIGTERM: a deploy) while the webhook had its error-rate
    alert and not answered yet: the stop cancelled the send, so no open alert was kept, and
    the box that took the lead sent the alert again. A stop lets the alert in flight end."""
    first, second = _error_rate_boxes(tmp_path, pg_url, hook)
    first.start()
    try:
        _eventually(lambda: bool(_sql(pg_url, UPKEEP_LED)), "the first box leading")
        second.start()
        hook.hold()
        _minute_of_traffic(pg_url, 12, 6)
        _eventually(lambda: _count(hook, "requests (50%) failed") == 1, "the alert")
        assert first.process is not None
        first.process.send_signal(signal.SIGTERM)
        stopping = "the alert being sent"  # (its log says it waits for it; or it exited)
        deadline = time.monotonic() + 20  # read often: the box waits 2 s at most
        while stopping not in first.log_text() and first.process.poll() is None:
            assert time.monotonic() < deadline, first.log_text()
            time.sleep(0.02)
        hook.release()
        assert first.stop() == 0
        _eventually(lambda: bool(_sql(pg_url, UPKEEP_LED)), "the second box leading")
        time.sleep(1.0)  # ticks of the second box, the rate still high: not said again
        assert _count(hook, "failed in 5 minutes") == 1, hook.texts()
    finally:
        hook.release()
        first.stop()
        second.stop()
