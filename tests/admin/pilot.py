"""Helpers for driving the admin app with Textual's Pilot and looking at what it shows."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from textual.css.query import NoMatches
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static

from codelace_box.config import Config, load_config
from codelace_box.db.core import db_time, open_database, write_transaction
from codelace_box.db.migrate import migrate
from codelace_box.db.models import UsageRecord
from codelace_box.gateway.metering import count_in_totals
from tests.pg_cluster import wanted_engine
from tests.support import base_sections, write_config

SECRET = "admin-tests-server-secret-0123456789"
# tests of the dashboard on a SQLite file as a file (moved, replaced, restored, made anew)
sqlite_file_only = pytest.mark.skipif(
    wanted_engine() != "sqlite", reason="a SQLite database file as a file"
)


@dataclass(frozen=True)
class AdminEnv:
    """A config file and its loaded Config, on a migrated database."""

    path: Path
    config: Config


def make_env(tmp: Path, **extra: dict[str, Any]) -> AdminEnv:
    """Write a config (fixed server secret) for a temp dir and migrate its database."""
    sections = base_sections(tmp)
    sections["server"]["secret_key"] = SECRET
    for name, keys in extra.items():
        sections.setdefault(name, {}).update(keys)
    path = write_config(tmp / "codelace.toml", sections)
    config = load_config(str(path))
    migrate(open_database(config.database.target))
    return AdminEnv(path, config)


async def until(
    pilot: Pilot[Any], check: Callable[[], object], what: str, timeout: float = 20.0
) -> None:
    """Let the app run until `check()` is truthy; fail naming `what` after `timeout` s. A widget
    the check looks for that is not on screen yet (a dialog still saving above it) is not yet."""
    deadline = time.monotonic() + timeout
    while not _holds(check):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for: {what}")
        await pilot.pause(0.05)


def _holds(check: Callable[[], object]) -> bool:
    try:
        return bool(check())
    except NoMatches:
        return False


def rows(pilot: Pilot[Any], selector: str) -> list[list[str]]:
    """The cells of a DataTable as plain text, top to bottom."""
    table = pilot.app.screen.query_one(selector, DataTable)
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


def column(pilot: Pilot[Any], selector: str, index: int = 0) -> list[str]:
    """One column of a DataTable as plain text."""
    return [row[index] for row in rows(pilot, selector)]


def text_of(pilot: Pilot[Any], selector: str) -> str:
    """What a Static/Label on the current screen shows, as plain text."""
    widget = pilot.app.screen.query_one(selector, Static)
    return str(widget.visual)


def screen_name(pilot: Pilot[Any]) -> str:
    return type(pilot.app.screen).__name__


async def open_form(pilot: Pilot[Any], key: str, what: str) -> None:
    """Press `key` and wait for the form dialog it opens (`what`: for the failure message)."""
    await pilot.press(key)
    await until(pilot, lambda: screen_name(pilot) == "FormDialog", what)


async def fill(pilot: Pilot[Any], field: str, value: str) -> None:
    """Type into a form field of the dialog on top (replacing what is there)."""
    widget = pilot.app.screen.query_one(f"#field-{field}", Input)
    widget.value = value
    await pilot.pause()


def notifications(pilot: Pilot[Any]) -> list[str]:
    """Every notification message shown so far (needs run_test(notifications=True))."""
    return [n.message for n in pilot.app._notifications]


def add_usage(
    user_id: int,
    when: datetime,
    *,
    request_id: str,
    model: str = "openai/gpt-5.4",
    tokens: tuple[int, int] = (1000, 500),
    cost_nanos: int = 7_500_000,
    status: str = "ok",
    error_code: str | None = None,
    api_key_id: int | None = None,
) -> None:
    """A metered request row as the gateway writes it (fixture data with a fixed time)."""
    row = UsageRecord.create(
        request_id=request_id,
        user=user_id,
        api_key=api_key_id,
        model=model,
        provider=model.split("/", 1)[0],
        upstream_model=model.split("/", 1)[1],
        input_tokens=tokens[0],
        output_tokens=tokens[1],
        input_per_1m_nanos=2_500_000_000,
        output_per_1m_nanos=10_000_000_000,
        cost_nanos=cost_nanos,
        status=status,
        error_code=error_code,
        duration_ms=420,
        created_at=when,
    )
    usage = (row.input_tokens, row.output_tokens, 0, 0, cost_nanos)
    with write_transaction() as tx:  # the totals and rollups, as settlement keeps them
        count_in_totals(tx, (user_id, api_key_id, model), status, usage, db_time(when))


def minutes_ago(now: datetime, minutes: float) -> datetime:
    return now - timedelta(minutes=minutes)


def rendered(pilot: Pilot[Any], selector: str, width: int = 98) -> str:
    """What a Static holding a Rich renderable (e.g. a Table) shows, as plain text."""
    from rich.console import Console

    widget = pilot.app.screen.query_one(selector, Static)
    console = Console(width=width, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(widget.content)
    return console.export_text()
