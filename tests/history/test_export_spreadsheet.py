"""`usage export` as finance reads it: the CSV opened in a spreadsheet (no cell a user or an
upstream wrote becomes a formula, one record a row whatever characters it holds) and the JSON
lines exact, on a real SQLite file (or PostgreSQL with CODELACE_TEST_DATABASE=postgres)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from codelace_box.accounts.users import create_user
from codelace_box.db.core import EARLIEST, POSTGRES, db_time, engine, write_transaction
from codelace_box.db.history import usage_pages
from codelace_box.db.models import UsageRecord
from codelace_box.gateway.metering import count_in_totals
from codelace_box.reports.history import export_records, write_export
from tests.pg_cluster import secret_for
from tests.support import run_cli

NOW = datetime(2026, 3, 1, 12, 0, 0)
# What a spreadsheet takes for a formula (OWASP's list): = + - @, a tab and a carriage return;
# and a NUL (OWASP ASVS 5.0, 1.2.10: the characters a field may not start with unescaped).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\x00")


_OTHER_BOX_ROW = (  # a settlement on another box (or worker), by its own connection
    "INSERT INTO usage_record (request_id, user_id, model, provider, upstream_model, "
    "input_tokens, output_tokens, input_per_1m_nanos, output_per_1m_nanos, cost_nanos, "
    "hold_nanos, status, stream, estimated, duration_ms, created_at, route, cache_read_tokens, "
    "cache_write_tokens, cache_write_1h_tokens, cache_read_per_1m_nanos, "
    "cache_write_per_1m_nanos, cache_write_1h_per_1m_nanos) VALUES (%s, %s, 'm/x', 'p', 'x', "
    "0, 0, 0, 0, 1, 0, 'ok', 0, 0, 0, %s, '/v1/chat/completions', 0, 0, 0, 0, 0, 0)"
)


def add_row(user_id: int, n: int, **values: Any) -> None:
    """A usage row, counted into the running totals as a settlement counts it."""
    when = values.get("created_at", NOW + timedelta(seconds=n))
    model, cost = values.get("model", "openai/gpt-5.4"), values.get("cost", 1000 + n)
    status = "error" if "error_code" in values else "ok"
    with write_transaction() as tx:
        UsageRecord.create(
            request_id=f"req-{n}",
            user=user_id,
            model=model,
            provider=values.get("provider", "openai"),
            upstream_model=values.get("upstream_model", "gpt-5.4"),
            input_tokens=10,
            output_tokens=2,
            input_per_1m_nanos=1,
            output_per_1m_nanos=1,
            cost_nanos=cost,
            status=status,
            error_code=values.get("error_code"),
            created_at=when,
        )
        count_in_totals(tx, (user_id, None, model), status, (10, 2, 0, 0, cost), db_time(when))


def exported(fmt: str) -> str:
    out = io.StringIO(newline="")
    write_export(export_records(None, None), out, fmt)
    return out.getvalue()


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_no_cell_a_user_or_an_upstream_wrote_is_a_formula(migrated_db: Path) -> None:
    """An account signed up as `=1+2@x.test` (the local part of an address may start with = +
    or -) and an upstream's error code `@SUM(A1)`, `-1+1`, a tab or CR first: each was written
    as it is, and a spreadsheet opening the CSV ran it as a formula. OWASP's advice: such a
    text cell starts with a single quote. Numbers stay numbers; the JSON lines stay exact."""
    emails = ["=1+2@x.test", "+cmd@x.test", "-2+3@x.test"]
    users = [create_user(email).id for email in emails]
    codes = ["@SUM(A1)", "-1+1", "\tx", "\rx", '=HYPERLINK("http://evil")']
    if engine() != POSTGRES:  # PostgreSQL's text holds no NUL
        codes.append("\x00=1+2")
    for n, code in enumerate(codes):
        add_row(users[n % len(users)], n, error_code=code, upstream_model=code)
    rows = csv_rows(exported("csv"))
    text_cells = [r[c] for r in rows for c in ("email", "error_code", "upstream_model")]
    assert text_cells and all(not cell.startswith(FORMULA_STARTS) for cell in text_cells)
    assert [r["email"] for r in rows] == [f"'{emails[n % 3]}" for n in range(len(codes))]
    assert [r["error_code"] for r in rows] == [f"'{code}" for code in codes]
    assert [r["cost_nanos"] for r in rows] == [str(1000 + n) for n in range(len(codes))]
    assert all(r["input_tokens"] == "10" and r["stream"] == "False" for r in rows)
    records = [json.loads(line) for line in exported("jsonl").splitlines()]
    assert [r["email"] for r in records] == [emails[n % 3] for n in range(len(codes))]
    assert [r["error_code"] for r in records] == codes
    assert [r["cost_nanos"] for r in records] == [1000 + n for n in range(len(codes))]


def test_every_record_is_one_row_whatever_its_characters(migrated_db: Path) -> None:
    """A lone carriage return inside a value was written unquoted (the writer ended lines
    with LF only and quoted only what held an LF), so a CSV reader or a spreadsheet split the
    record in two there. Every record reads back as one row, its values exact, in UTF-8."""
    user = create_user("chars@x.test").id
    odd = ["a\rb", "c\nd", "e\r\nf", "g\x07h\x1b[2J", "naïve 模型 \u2028 \U0001f600", 'q"u,o']
    if engine() != POSTGRES:  # PostgreSQL's text holds no NUL
        odd.append("n\x00ul")
    for n, value in enumerate(odd):
        add_row(user, n, upstream_model=value, provider=value)
    text = exported("csv")
    text.encode("utf-8")  # valid UTF-8: no lone surrogate
    rows = csv_rows(text)
    assert len(rows) == len(odd)
    assert [r["upstream_model"] for r in rows] == odd
    assert [r["provider"] for r in rows] == odd
    assert [r["request_id"] for r in rows] == [f"req-{n}" for n in range(len(odd))]
    records = [json.loads(line) for line in exported("jsonl").split("\n") if line]
    assert [r["upstream_model"] for r in records] == odd


def config_for(database: Any, folder: Path) -> Path:
    """A config naming the test's database (a SQLite path or a PostgreSQL URL)."""
    config = folder / "codelace.toml"
    if not str(database).startswith("postgresql://"):
        config.write_text(f'[database]\npath = "{database}"\n')
        return config
    secret = secret_for(str(database))
    config.write_text(f'[database]\nurl = "{database}"\n[server]\nsecret_key = "{secret}"\n')
    return config


def test_an_export_takes_a_window_whose_end_is_excluded(migrated_db: Any, tmp_path: Path) -> None:
    """Finance asks for November: `usage export` had --since only, so November came with every
    row since (December so far), and the CSV had to be cut by hand. --until ends the window as
    `usage report`'s does: UTC, excluded (the row at midnight of the day after is not in it,
    the one a microsecond before is); an end not after the start is refused in one line."""
    user = create_user("window@x.test").id
    edges = [
        datetime(2026, 10, 31, 23, 59, 59, 999999),
        datetime(2026, 11, 1),
        datetime(2026, 11, 30, 23, 59, 59, 999999),
        datetime(2026, 12, 1),
    ]
    for n, when in enumerate(edges):
        add_row(user, n, created_at=when)
    config = config_for(migrated_db, tmp_path)
    window = ("--since", "2026-11-01", "--until", "2026-12-01")
    done = run_cli(config, "usage", "export", "--format", "jsonl", *window)
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["request_id"] for line in done.stdout.splitlines()] == [
        "req-1",
        "req-2",
    ]
    done = run_cli(config, "usage", "export", "--format", "csv", "--until", "2026-11-01")
    assert [r["request_id"] for r in csv_rows(done.stdout)] == ["req-0"]
    refused = run_cli(
        config, "usage", "export", "--format", "csv", *window[:2], "--until", "2026-11-01"
    )
    assert refused.returncode == 1 and refused.stdout == ""
    assert "--since must come before --until" in refused.stderr, refused.stderr


def test_the_export_is_utf8_whatever_the_terminal_s_encoding(
    migrated_db: Any, tmp_path: Path
) -> None:
    """Standard output in a legacy encoding (a Latin-1 locale, PYTHONIOENCODING, a Windows
    file redirect in its ANSI code page): the CSV stopped at the first row naming a model
    in another script, `unexpected UnicodeEncodeError`, half a file written. The export is a
    file format: UTF-8 always, its lines as the format ends them."""
    user = create_user("utf8@x.test").id
    add_row(user, 0, upstream_model="模型-ü")
    add_row(user, 1)
    config = config_for(migrated_db, tmp_path)
    latin1 = {"PYTHONIOENCODING": "latin-1"}
    done = run_cli(config, "usage", "export", "--format", "csv", env=latin1)
    assert done.returncode == 0, done.stderr
    rows = csv_rows(done.stdout)
    assert [r["upstream_model"] for r in rows] == ["模型-ü", "gpt-5.4"]
    done = run_cli(config, "usage", "export", "--format", "jsonl", env=latin1)
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["upstream_model"] for line in done.stdout.splitlines()] == [
        "模型-ü",
        "gpt-5.4",
    ]


def test_an_export_reaching_past_retention_says_its_older_rows_are_gone(
    migrated_db: Any, tmp_path: Path
) -> None:
    """With usage.retention_days set, an export of last quarter held only the last N days'
    rows and said nothing: finance's sum fell short of the ledger with no word why (`usage
    report` says so in a note). The export now says it on stderr (stdout stays the file)."""
    user = create_user("kept@x.test").id
    add_row(user, 0, created_at=datetime.now(UTC).replace(tzinfo=None) - timedelta(days=1))
    config = config_for(migrated_db, tmp_path)
    config.write_text(config.read_text() + "[usage]\nretention_days = 30\n")
    done = run_cli(config, "usage", "export", "--format", "jsonl", "--since", "90d")
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["request_id"] for line in done.stdout.splitlines()] == ["req-0"]
    assert "usage.retention_days = 30" in done.stderr and "deleted" in done.stderr, done.stderr
    for recent in (("--since", "7d"), ("--since", "20d", "--until", "10d")):
        done = run_cli(config, "usage", "export", "--format", "csv", *recent)
        assert done.returncode == 0 and "retention" not in done.stderr, done.stderr
    for reaching in ((), ("--since", "40d", "--until", "35d")):  # from the start; all gone
        done = run_cli(config, "usage", "export", "--format", "csv", *reaching)
        assert "usage.retention_days = 30" in done.stderr, done.stderr


def test_the_export_reads_a_page_at_a_time_and_loses_no_row_at_a_page_s_edge(
    migrated_db: Any,
) -> None:
    """More rows than a page (5,000): each exported once, in order, the window's end applied
    on every page; and the export is read as it is written, a page at a time, never the whole
    table in memory first: on SQLite a row settled after the first page was read is still in
    it; on PostgreSQL the pages are one snapshot (a row another box settles meanwhile is not:
    test_a_row_another_box_commits_late_is_not_passed_over_on_postgresql)."""
    user = create_user("pages@x.test").id
    base = {"user": user, "model": "m/x", "provider": "p", "upstream_model": "x", "status": "ok"}
    prices = {"input_per_1m_nanos": 0, "output_per_1m_nanos": 0, "cost_nanos": 1}
    rows = [
        {**base, **prices, "request_id": f"r{n:05d}", "created_at": NOW + timedelta(seconds=n)}
        for n in range(10_001)
    ]
    with write_transaction():
        for chunk in range(0, len(rows), 500):
            UsageRecord.insert_many(rows[chunk : chunk + 500]).execute()
    records = export_records(None, None, NOW + timedelta(seconds=10_001))
    first = next(records)
    late = [("req-99999", NOW + timedelta(seconds=10_000, microseconds=1))]
    late.append(("req-99998", NOW + timedelta(seconds=10_001)))  # the end: excluded
    if engine() == POSTGRES:
        with psycopg.connect(str(migrated_db)) as other:
            for request_id, when in late:
                other.execute(_OTHER_BOX_ROW, (request_id, user, db_time(when)))
    else:
        for request_id, when in late:
            add_row(user, int(request_id[4:]), created_at=when)
    ids = [first["request_id"], *(r["request_id"] for r in records)]
    settled_late = [] if engine() == POSTGRES else ["req-99999"]
    assert ids == [f"r{n:05d}" for n in range(10_001)] + settled_late


def test_a_row_another_box_commits_late_is_not_passed_over_on_postgresql(pg_db: str) -> None:
    """On PostgreSQL ids come from a sequence: another box's settlement took id 2, this one
    committed id 3, and the export read its pages (id 1, then id 3: 2 not yet committed);
    then the other box committed 2, and a later settlement 4. The next page, after 3, took 4:
    row 2 was passed over for good while a row committed after it was exported (its sum
    matched the ledger at no instant). The export is the database at one instant."""
    user = create_user("late@x.test").id
    add_row(user, 1)
    with psycopg.connect(pg_db) as other:
        other.execute(_OTHER_BOX_ROW, ("req-2", user, db_time(NOW + timedelta(seconds=2))))
        add_row(user, 3)
        pages = usage_pages(EARLIEST, None, page=1)
        seen = [row[0] for row in next(pages)] + [row[0] for row in next(pages)]
        other.commit()
    with psycopg.connect(pg_db) as later:
        later.execute(_OTHER_BOX_ROW, ("req-4", user, db_time(NOW + timedelta(seconds=4))))
    seen += [row[0] for page in pages for row in page]
    assert seen == ["req-1", "req-3"]  # as it was at the first read: req-2 was not committed
    assert [row[0] for page in usage_pages(EARLIEST, None, page=1) for row in page] == [
        f"req-{n}" for n in (1, 2, 3, 4)
    ]
