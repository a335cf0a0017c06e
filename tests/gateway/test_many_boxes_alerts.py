"""Boxes sharing one PostgreSQL database send each alert once, not once a box: one box leads
the upkeep (a session advisory lock), and when it stops another box takes the lead."""

from __future__ import annotations

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


def _box(folder: Path, pg_url: str, hook: WebhookReceiver) -> tuple[Path, ServerProcess]:
    port = free_port()
    sections = {
        "server": {"host": "127.0.0.1", "port": port, "secret_key": SHARED_SECRET},
        "database": {"path": str(folder / "data" / "codelace.db"), "url": pg_url},
        "alerts": {"webhook_url": hook.url},
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
