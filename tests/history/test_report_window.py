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


def test_the_rows_add_up_to_the_total_in_integers(migrated_db: Any, tmp_path: Path) -> None:
    """The JSON gave each group's spend only as a USD float: finance adding up the rows of
    $0.1 and $0.2 got 0.30000000000000004 against a total of 0.3, and over many small costs
    the drift grows. Each row and the total now carry `spend_nanos` too, integers that add
    up exactly (the spend_usd beside them is unchanged)."""
    user = create_user("sums@x.test").id
    costs = {"a/one": 100_000_000, "a/two": 200_000_000, "a/three": 1}
    for n, (model, cost) in enumerate(costs.items()):
        add_row(user, n, model=model, cost=cost)
    view = report(config_for(migrated_db, tmp_path))
    rows = {r["model"]: r for r in view["rows"]}
    assert {model: rows[model]["spend_nanos"] for model in costs} == costs
    assert sum(r["spend_nanos"] for r in view["rows"]) == view["total"]["spend_nanos"]
    assert view["total"]["spend_nanos"] == sum(costs.values())
    assert view["total"]["spend_usd"] == 0.300000001


def test_the_table_prints_a_big_total_to_the_nano_dollar(migrated_db: Any, tmp_path: Path) -> None:
    """The text table printed the JSON's USD float, exact only below about $1M: a total of
    $12,345,678.123456789 read 12345678.12345679, not what the ledger holds. The table now
    prints the spend from its integer nano-USD, every digit."""
    user = create_user("big@x.test").id
    add_row(user, 0, model="a/big", cost=12_345_678_123_456_788)
    add_row(user, 1, model="a/tiny", cost=1)
    config = config_for(migrated_db, tmp_path)
    done = run_cli(config, "usage", "report", "--by", "model")
    assert done.returncode == 0, done.stderr
    lines = {line.split()[0]: line.split() for line in done.stdout.splitlines()[2:]}
    assert lines["a/big"][4] == "12345678.123456788"
    assert lines["a/tiny"][4] == "0.000000001"
    assert lines["TOTAL"][4] == "12345678.123456789"
