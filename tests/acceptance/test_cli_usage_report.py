"""`usage report` and `users show` over real traffic: requests sent through the running box,
then the operator's commands read who spent what (the spend equals what the ledger took)."""

from __future__ import annotations

import itertools
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.acceptance.conftest import CHEAP_MODEL, ISO_Z, MODEL, Box
from tests.support import run_cli

pytestmark = pytest.mark.timeout(120)
HI = [{"role": "user", "content": "hi"}]
IDN_USERS = itertools.count()


def chat(box: Box, key: str, model: str) -> None:
    with box.http(key) as http:
        answer = http.post("/v1/chat/completions", json={"model": model, "messages": HI})
    assert answer.status_code == 200, answer.text


def report(box: Box, *args: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(box.cli("usage", "report", *args, "--json"))
    return result


def balance(box: Box, email: str) -> float:
    return float(json.loads(box.cli("users", "show", email, "--json"))["credit_balance_usd"])


def test_usage_report_groups_real_traffic_by_user_key_and_model(box: Box) -> None:
    heavy, heavy_key = box.new_user("10")
    light, light_key = box.new_user("10")
    chat(box, heavy_key, MODEL)
    chat(box, heavy_key, MODEL)
    chat(box, light_key, CHEAP_MODEL)

    by_user = {r["user"]: r for r in report(box, "--since", "1h", "--by", "user")["rows"]}
    assert by_user[heavy]["requests"] == 2 and by_user[light]["requests"] == 1
    assert by_user[heavy]["spend_usd"] == pytest.approx(10 - balance(box, heavy), abs=1e-9)
    assert by_user[heavy]["spend_usd"] > by_user[light]["spend_usd"] > 0
    emails = [r["user"] for r in report(box, "--by", "user")["rows"]]
    assert emails.index(heavy) < emails.index(light), "the biggest spend comes first"

    by_key = report(box, "--since", "1h", "--by", "key")["rows"]
    mine = [r for r in by_key if heavy in r["owner"]]
    assert len(mine) == 1 and mine[0]["requests"] == 2
    assert heavy_key.startswith(mine[0]["key"]) and heavy_key not in json.dumps(by_key)
    table = box.cli("usage", "report", "--since", "1h", "--by", "key")
    assert "KEY_ID" in table and mine[0]["key_id"] in table  # what `keys revoke` takes
    box.cli("keys", "revoke", mine[0]["key_id"])

    by_model = {r["model"]: r for r in report(box, "--since", "1h", "--by", "model")["rows"]}
    assert by_model[MODEL]["requests"] >= 2 and by_model[CHEAP_MODEL]["requests"] >= 1
    whole = report(box, "--by", "model")
    assert whole["total"]["requests"] == sum(r["requests"] for r in whole["rows"])

    text = box.cli("usage", "report", "--since", "1h")
    assert heavy in text and "TOTAL" in text and "SPEND_USD" in text


def test_a_window_outside_the_traffic_is_empty_and_bad_moments_are_one_line(box: Box) -> None:
    email, key = box.new_user("10")
    chat(box, key, MODEL)
    old = report(box, "--since", "2000-01-01", "--until", "2000-01-02")
    assert old["rows"] == [] and old["total"]["requests"] == 0
    assert old["since"] == "2000-01-01T00:00:00Z" and old["until"] == "2000-01-02T00:00:00Z"
    assert email not in [r["user"] for r in report(box, "--until", "24h")["rows"]]
    assert email in [r["user"] for r in report(box, "--since", "24h")["rows"]]
    for args in (
        ("--since", "yesterday"),
        ("--since", "7d", "--until", "8d"),
        ("--by", "day"),
        ("--since", ""),  # `--since "$SINCE"` unset: all of history before, as audit refuses
        ("--until", ""),
    ):
        result = run_cli(box.config, "usage", "report", *args)
        assert result.returncode in (1, 2) and len(result.stderr.strip().splitlines()) == 1, args


def test_users_show_has_totals_and_when_the_key_was_last_used(box: Box) -> None:
    email, key = box.new_user("10")
    shown = json.loads(box.cli("users", "show", email, "--json"))
    assert (shown["requests"], shown["spent_usd"], shown["last_seen_at"]) == (0, 0, None)
    chat(box, key, MODEL)
    shown = json.loads(box.cli("users", "show", email, "--json"))
    assert shown["requests"] == 1 and shown["input_tokens"] > 0 and shown["output_tokens"] > 0
    assert shown["spent_usd"] == pytest.approx(10 - shown["credit_balance_usd"], abs=1e-9)
    assert ISO_Z.match(shown["last_seen_at"]), shown["last_seen_at"]
    listed = {u["email"]: u for u in json.loads(box.cli("users", "list", "--json"))}
    assert listed[email]["last_seen_at"] == shown["last_seen_at"]


def test_a_window_reaching_past_retention_says_its_older_rows_are_gone(box: Box) -> None:
    """With usage.retention_days set, usage rows older than that are deleted (the totals and
    the ledger stay): a report whose window starts before the cutoff cannot count them, and
    says so (text and JSON) instead of silently showing less than was spent."""
    email, key = box.new_user("10")
    chat(box, key, MODEL)
    kept = {"CODELACE_USAGE_RETENTION_DAYS": "30"}
    since_ever = run_cli(box.config, "usage", "report", "--json", env=kept)
    assert since_ever.returncode == 0, since_ever.stderr
    view = json.loads(since_ever.stdout)
    cutoff = datetime.fromisoformat(view["rows_deleted_before"].replace("Z", "+00:00"))
    expected = datetime.now(UTC) - timedelta(days=30)
    assert abs((cutoff - expected).total_seconds()) < 60, view["rows_deleted_before"]
    assert email in [r["user"] for r in view["rows"]]
    older = run_cli(box.config, "usage", "report", "--since", "2000-01-01", env=kept)
    assert older.returncode == 0, older.stderr
    shown = re.search(r"usage rows before (\S+) are deleted", older.stdout)
    assert shown, older.stdout  # its own run's cutoff: a second or so after the first one's
    later = datetime.fromisoformat(shown.group(1).replace("Z", "+00:00"))
    assert timedelta(0) <= later - cutoff < timedelta(seconds=60), (shown.group(1), cutoff)
    assert "(usage.retention_days = 30)" in older.stdout
    recent = json.loads(run_cli(box.config, "usage", "report", "--since", "7d", "--json",
                                env=kept).stdout)  # fmt: skip
    assert recent["rows_deleted_before"] is None  # the window is whole
    forever = report(box)  # retention off: nothing was deleted
    assert forever["rows_deleted_before"] is None
    assert "deleted" not in box.cli("usage", "report")


def test_one_day_given_as_since_and_until_says_the_end_is_excluded(box: Box) -> None:
    """`--since 2026-12-04 --until 2026-12-04`, one day as an operator writes it, was refused
    with "the start of the window must come before its end", leaving them to guess why: the
    end is excluded. The one line now says so and names the --until that gives that day."""
    result = run_cli(
        box.config, "usage", "report", "--since", "2026-12-04", "--until", "2026-12-04"
    )
    assert result.returncode == 1, result.stdout
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1 and "excluded" in line, line
    assert "--until 2026-12-05" in line, line
    assert report(box, "--since", "2026-12-04", "--until", "2026-12-05")["until"] == (
        "2026-12-05T00:00:00Z"
    )


def test_an_international_domain_is_shown_in_unicode_as_users_list_shows_it(box: Box) -> None:
    """`usage report` printed an address at bücher.de as xn--bcher-kva.de (the stored form)
    in its table, per user and in a key's owner, where `users list` and `users show` print
    bücher.de: the operator read two names for one account. The table shows Unicode now;
    --json keeps the stored form, as theirs does."""
    email = f"ida{next(IDN_USERS)}-{id(box)}@Bücher.de"
    box.cli("users", "create", email)
    box.cli("credit", email, "10", "--reason", "test credit")
    key = box.cli("keys", "create", email, "--name", "idn").strip().splitlines()[0]
    chat(box, key, MODEL)
    stored = email.lower().replace("bücher.de", "xn--bcher-kva.de")
    shown = email.lower()
    for by in ("user", "key"):
        text = box.cli("usage", "report", "--since", "1h", "--by", by)
        assert shown in text and stored not in text, text
        rows = report(box, "--since", "1h", "--by", by)["rows"]
        labels = [r["user"] if by == "user" else r["owner"] for r in rows]
        assert any(stored in label for label in labels), labels


def test_a_moment_it_cannot_read_is_a_usage_error_naming_the_option(box: Box) -> None:
    """`--since yesterday` exited 1 where every other bad option value (`--by foo`, `--format
    xml`, an amount) is a usage error (exit 2) naming the option, as click says it."""
    for args in (("usage", "report", "--since", "1e2"), ("usage", "report", "--until", "soon"),
                 ("usage", "export", "--format", "csv", "--since", "x"),
                 ("audit", "--since", "2026-13-01")):  # fmt: skip
        done = run_cli(box.config, *args)
        assert done.returncode == 2, (args, done.stderr)
        option, value = args[-2:]
        assert done.stderr.startswith(
            f"error: Invalid value for '{option}': {value!r}: expected an ISO date"
        ), done.stderr
