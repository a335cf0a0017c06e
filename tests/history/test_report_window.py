"""`usage report --json` as finance keeps it: the window it shows is the window it counted, so
running it again with the `since`/`until` it printed gives the same figures (a real SQLite
file, or PostgreSQL with CODELACE_TEST_DATABASE=postgres)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from codelace_box.accounts.users import create_user
from tests.history.test_export_spreadsheet import add_row, config_for
from tests.support import run_cli


def report(config: Path, *args: str) -> dict[str, Any]:
    done = run_cli(config, "usage", "report", "--by", "model", "--json", *args)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_the_window_shown_is_the_window_counted(migrated_db: Any, tmp_path: Path) -> None:
    """A window starting inside a second (`--since 2026-03-01T12:00:00.5`, or any `24h`, which
    is now to the microsecond) was shown cut to the second ("since": "...12:00:00Z"), so the
    row at 12:00:00.2 looked inside the window but was not counted, and the report run again
    with the window it printed counted one more request. The moments are shown to the
    microsecond when they have one."""
    user = create_user("shown@x.test").id
    for n, micro in enumerate((200_000, 700_000)):
        add_row(user, n, created_at=datetime(2026, 3, 1, 12, 0, 0, micro), cost=1000)
    config = config_for(migrated_db, tmp_path)
    first = report(config, "--since", "2026-03-01T12:00:00.5", "--until", "2026-03-01T12:00:00.9")
    assert first["total"]["requests"] == 1
    assert (first["since"], first["until"]) == (
        "2026-03-01T12:00:00.500000Z",
        "2026-03-01T12:00:00.900000Z",
    )
    again = report(config, "--since", first["since"], "--until", first["until"])
    assert again["total"] == first["total"]
    whole = report(config, "--since", "2026-03-01T12:00")
    assert whole["since"] == "2026-03-01T12:00:00Z" and whole["total"]["requests"] == 2
