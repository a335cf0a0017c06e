"""The audit log grows forever (every admin action, never deleted): `doctor`'s proof of its
chain and `audit`'s listing read it a page at a time, in id order, so their memory stays one
page's whatever the log's length; a changed or removed entry is still found wherever it falls
in a page, ids that skip (PostgreSQL sequences) are still no problem, and what `audit` prints
is what it printed when it read the whole log at once. On PostgreSQL too with
CODELACE_TEST_DATABASE=postgres."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from codelace_box.audit import Change, _body, canonical, entry_hash, list_entries
from codelace_box.audit.chain import verify_chain
from codelace_box.cli.audit import _changes, entry_view, json_text, table_text
from codelace_box.cli.support import table
from codelace_box.db.core import close_database, open_database, utcnow, write_transaction
from codelace_box.db.observability import last_hash
from tests.foundation.test_copy_round_trip import PEAK_MEMORY
from tests.observability.test_audit_log import AuditBox, audit_box
from tests.support import REPO_ROOT, cli_env

COLUMNS = ["id", "at", "os_user", "client", "command", "target", "changes"]


def _state(i: int) -> dict[str, Any]:
    """A provider-sized state (its models listed): about 1.4 kB of JSON."""
    return {"name": f"p{i}", "models": [f"vendor/model-{j:03d}" for j in range(80)], "rpm": i}


def _fill(box: AuditBox, count: int, first: int = 0, target: str | None = None) -> None:
    """`count` more entries, chained and counted in the head as `record` writes them (its
    hash and canonical text), inserted 250 a statement (one `record` each took 4-5 ms on
    PostgreSQL on a busy machine: 20 s for the memory test)."""
    open_database(box.target)
    try:
        with write_transaction() as tx:
            prev, rows = last_hash(tx), []
            for i in range(first, first + count):
                change = Change("cli", "providers update", target or f"p{i}", _state(i))
                change.after = _state(i) | {"rpm": i + 1}
                created = utcnow().isoformat(timespec="microseconds") + "Z"
                digest = entry_hash(prev, _body(created, "tester", change))
                states = [canonical(change.before), canonical(change.after)]
                rows.append([created, "tester", change.client, change.command, change.target,
                             *states, prev, digest])  # fmt: skip
                prev = digest
            for start in range(0, count, 250):
                _insert(tx, rows[start : start + 250])
            tx.execute("UPDATE audit_head SET entries = entries + ?, hash = ?", (count, prev))
    finally:
        close_database()


def _insert(tx: Any, rows: list[list[str]]) -> None:
    values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(rows))
    tx.execute(
        "INSERT INTO audit_log (created_at, os_user, client, command, target, before_state, "
        f"after_state, prev_hash, hash) VALUES {values}",
        [value for row in rows for value in row],
    )


@pytest.fixture
def opened() -> Iterator[Any]:
    """Open a box's database in this process for the duration of a test."""
    opened: list[bool] = []

    def open_(box: AuditBox) -> None:
        open_database(box.target)
        opened.append(True)

    yield open_
    if opened:
        close_database()


def peak_mb(config: Path, *args: str, status: int = 0) -> int:
    """The peak memory (VmHWM, MB) of a CLI command run on a config, its output dropped; it
    must exit with `status`."""
    run = subprocess.run(
        [sys.executable, "-c", PEAK_MEMORY, "--config", str(config), *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=cli_env(),
        cwd=REPO_ROOT, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == status, run.stderr
    return int(run.stderr.split("maxrss_kb ")[1].split()[0]) // 1024


def test_doctor_and_audit_hold_a_page_of_the_log_not_the_whole_log(tmp_path: Path) -> None:
    """doctor and audit read the whole log into memory: 200,000 entries took doctor 0.7 GB
    and `audit --json` 1.5 GB, and an operator's log only grows. Three times the entries now
    take a page of entries (1,000) and SQLite's page cache (16 MB, filled as the file grows)."""
    box = audit_box(tmp_path)
    box.ok("users", "create", "a@example.com")
    _fill(box, 1_500)
    small = {cmd: peak_mb(box.config, *cmd.split()) for cmd in ("doctor", "audit --json")}
    _fill(box, 3_000, first=1_500)
    big = {cmd: peak_mb(box.config, *cmd.split()) for cmd in small}
    # measured, the whole log read: doctor +65, --json +128 MB (the table +68); a page at a
    # time: +11, +21 (+19), then flat: +0 from 4,500 to 10,500 entries but --json's +16 as
    # the file outgrew the page cache
    assert all(big[cmd] - small[cmd] < 32 for cmd in small), (small, big)
    assert box.ok("doctor").startswith("ok")
    listed = json.loads(box.ok("audit", "--json"))  # five pages, one JSON array
    assert [e["id"] for e in listed] == list(range(1, 4_502))


def _chained(tmp_path: Path, count: int = 10) -> AuditBox:
    box = audit_box(tmp_path)
    box.ok("users", "create", "a@example.com")  # entry 1
    _fill(box, count - 1)  # entries 2..count
    return box


def test_a_changed_entry_is_found_in_the_middle_of_a_page_and_at_its_edges(
    tmp_path: Path, opened: Any
) -> None:
    box = _chained(tmp_path)
    opened(box)
    assert verify_chain(page=4) == []
    for changed in (6, 4, 5, 10, 1):  # pages of 4: 1-4, 5-8, 9-10
        (old,) = box.sql("SELECT target FROM audit_log WHERE id = ?", (changed,))
        box.sql("UPDATE audit_log SET target = 'z' WHERE id = ?", (changed,))
        expected = [f"audit log entry {changed}: its content does not match its hash"]
        for page in (4, 1, 1000):
            assert verify_chain(page=page) == expected, (changed, page)
        box.sql("UPDATE audit_log SET target = ? WHERE id = ?", (old[0], changed))
    assert verify_chain(page=4) == []


def test_a_removed_entry_is_found_in_the_middle_of_a_page_and_at_its_edges(
    tmp_path: Path, opened: Any
) -> None:
    box = _chained(tmp_path, 12)
    opened(box)
    box.sql("DELETE FROM audit_log WHERE id IN (6, 8, 9)")  # pages of 4: mid, last, first
    expected = [
        "audit log entry 7: does not follow the entry before it (an entry was removed or changed)",
        "audit log entry 10: does not follow the entry before it (an entry was removed or changed)",
        "audit log: 9 entries where 12 were written (entries were removed, the newest ones if "
        "the chain above holds)",
    ]
    for page in (4, 3, 1, 1000):
        assert verify_chain(page=page) == expected, page
    result = box.cli("doctor")
    assert result.returncode == 1
    assert all(line in result.stdout for line in expected), result.stdout


def test_ids_that_skip_across_a_page_edge_are_no_problem(tmp_path: Path, opened: Any) -> None:
    """A PostgreSQL sequence skips the ids of rolled-back inserts: the next page starts after
    the last id read, whatever the gap."""
    box = _chained(tmp_path, 4)
    if box.target.startswith("postgresql://"):
        box.sql("SELECT setval(pg_get_serial_sequence('audit_log', 'id'), 40)")
    else:
        box.sql("UPDATE audit_log SET id = 40 WHERE id = 4")
    _fill(box, 3, first=100)
    opened(box)
    on_postgres = box.target.startswith("postgresql://")
    assert [e.id for e in list_entries()] == [1, 2, 3, 4 if on_postgres else 40, 41, 42, 43]
    for page in (1, 2, 3, 4):
        assert verify_chain(page=page) == [], page
    assert box.ok("doctor").startswith("ok")


def _whole_log_output(as_json: bool) -> str:
    """What `audit` printed when it read the whole log at once (cli/support.py emit)."""
    rows = [entry_view(e) for e in list_entries()]
    if as_json:
        return json.dumps(rows, indent=2, default=str) + "\n"
    return table([r | {"changes": _changes(r)} for r in rows], COLUMNS) + "\n"


def test_audit_prints_what_it_printed_when_it_read_the_whole_log(
    tmp_path: Path, opened: Any
) -> None:
    """A target two columns a character wide (CJK) on the last page sets its column's width
    on every page before it, as it did."""
    box = _chained(tmp_path, 7)
    _fill(box, 1, first=50, target="\u7ba1\u7406\u8005@example.com")
    opened(box)
    for as_json in (False, True):
        expected = _whole_log_output(as_json)
        assert box.ok("audit", *(["--json"] if as_json else [])) == expected
        for page in (1, 3, 8, 1000):
            text = json_text if as_json else table_text
            assert "".join(text(None, page)) == expected, (as_json, page)
    recent = json.loads(box.ok("audit", "--json", "--since", "24h"))
    assert [e["id"] for e in recent] == list(range(1, 9))
    assert box.ok("audit", "--since", "2099-01-01") == "(none)\n"
    assert box.ok("audit", "--since", "2099-01-01", "--json") == "[]\n"
