"""Acceptance of the README's "Command line" for accounts and money: `users`, `credit` and
`keys`, every option as written, from outside (as tests/acceptance/test_cli_commands.py).
"""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.acceptance.cli_tools import Box
from tests.support import is_uuid4

pytestmark = pytest.mark.timeout(120)

FULL_KEY = re.compile(r"^cl_[A-Za-z0-9]{32,}$")


def test_users_create_list_show_disable_enable(space: Box) -> None:
    assert "ana@users.test" in space.ok("users", "create", "Ana@Users.test")
    listed = {u["email"]: u for u in space.json("users", "list")}
    assert listed["ana@users.test"]["status"] == "active"
    shown = space.json("users", "show", "ana@users.test")
    assert shown["email"] == "ana@users.test" and shown["credit_balance_usd"] == 0
    assert shown["keys"] == []
    space.ok("users", "disable", "ana@users.test")
    assert space.json("users", "show", "ana@users.test")["status"] == "disabled"
    space.ok("users", "enable", "ana@users.test")
    assert space.json("users", "show", "ana@users.test")["status"] == "active"
    assert "ana@users.test" in space.ok("users", "list")  # the human table


@pytest.mark.parametrize(
    "args",
    [
        ("users", "show", "nobody@users.test"),
        ("users", "disable", "nobody@users.test"),
        ("users", "enable", "nobody@users.test"),
        ("users", "create", "not-an-email"),
        ("users", "show"),
        ("users", "frobnicate"),
        ("no-such-command",),
    ],
)
def test_user_mistakes_fail_with_one_line(space: Box, args: tuple[str, ...]) -> None:
    space.fail(*args)


def test_a_duplicate_user_is_refused(space: Box) -> None:
    space.ok("users", "create", "dup@users.test")
    assert "dup@users.test" in space.fail("users", "create", "dup@users.test")


def test_credit_adds_and_removes_through_the_ledger(space: Box) -> None:
    space.ok("users", "create", "cred@users.test")
    space.ok("credit", "cred@users.test", "12.5", "--reason", "welcome")
    space.ok("credit", "cred@users.test", "-2.25", "--reason", "refund of a test")
    space.ok("credit", "cred@users.test", "0.000000001", "--reason", "one nano-dollar")
    shown = space.json("users", "show", "cred@users.test")
    assert shown["credit_balance_usd"] == pytest.approx(10.250000001, abs=1e-12)
    reasons = space.sql(
        "SELECT l.amount_nanos, l.reason FROM ledger_entry l JOIN user u ON u.id = l.user_id "
        "WHERE u.email = ? ORDER BY l.id",
        ("cred@users.test",),
    )
    assert reasons == [
        (12_500_000_000, "welcome"),
        (-2_250_000_000, "refund of a test"),
        (1, "one nano-dollar"),
    ]


@pytest.mark.parametrize(
    "args",
    [
        ("credit", "cred2@users.test", "5"),  # --reason is required
        ("credit", "cred2@users.test", "five", "--reason", "x"),
        ("credit", "cred2@users.test", "NaN", "--reason", "x"),
        ("credit", "cred2@users.test", "0.0000000001", "--reason", "finer than nano"),
        ("credit", "cred2@users.test", "-5", "--reason", "below zero"),
        ("credit", "nobody@users.test", "5", "--reason", "x"),
        ("credit", "cred2@users.test", "1e999999999", "--reason", "past Decimal's range"),
        ("credit", "cred2@users.test", "1.00000000000000000000000000000001", "--reason", "x"),
    ],
)
def test_credit_mistakes_fail_and_change_nothing(space: Box, args: tuple[str, ...]) -> None:
    if not space.sql("SELECT 1 FROM user WHERE email = 'cred2@users.test'"):
        space.ok("users", "create", "cred2@users.test")
    line = space.fail(*args)
    assert "unexpected" not in line, line
    assert space.json("users", "show", "cred2@users.test")["credit_balance_usd"] == 0


def test_keys_create_prints_the_full_key_once(space: Box) -> None:
    space.ok("users", "create", "keys@users.test")
    result = space.cli("keys", "create", "keys@users.test", "--name", "laptop")
    assert result.returncode == 0, result.stderr
    full_key = result.stdout.strip()
    assert FULL_KEY.match(full_key), result.stdout
    listed = space.json("keys", "list", "keys@users.test")
    assert [(k["name"], k["key_prefix"]) for k in listed] == [("laptop", full_key[:7])]
    assert set(listed[0]) >= {"id", "key_prefix", "name", "created_at", "last_used_at"}
    for shown in (
        space.ok("keys", "list", "keys@users.test"),
        space.ok("keys", "list", "keys@users.test", "--json"),
        space.ok("users", "show", "keys@users.test", "--json"),
        space.ok("users", "list", "--json"),
    ):
        assert full_key not in shown
    assert full_key.encode() not in space.db_path.read_bytes()


def test_keys_create_without_a_name_and_revoke(space: Box) -> None:
    space.ok("users", "create", "rev@users.test")
    assert FULL_KEY.match(space.ok("keys", "create", "rev@users.test").strip())
    (key,) = space.json("keys", "list", "rev@users.test")
    assert is_uuid4(key["id"])
    assert space.ok("keys", "revoke", key["id"][:8]).startswith(f"revoked key {key['id']} (")
    assert space.json("keys", "list", "rev@users.test") == []
    assert (
        space.fail("keys", "revoke", key["id"]) == f"error: no active API key with id {key['id']!r}"
    )
    assert space.fail("keys", "revoke", "not-a-number") == "error: no active API key with that id"
    huge = "9" * 25  # past SQLite's integers: no key's id starts so either
    assert space.fail("keys", "revoke", huge) == f"error: no active API key with id {huge!r}"
    space.sql("UPDATE api_key SET uuid = 'f' || substr(uuid, 2) WHERE id = 1")  # not both ways
    assert "old numeric id" in space.fail("keys", "revoke", "1")
    space.fail("keys", "create", "nobody@users.test")
    space.fail("keys", "list", "nobody@users.test")


def test_a_key_that_cannot_be_printed_is_not_left_working(space: Box) -> None:
    """`keys create` shows the full key once, on stdout. Written to a full disk
    (`keys create ... > key.txt`) it failed with "unexpected OSError: [Errno 28] No space left
    on device", and the key it had made stayed active: a working credential nobody ever saw.
    The key is revoked again and the one line says so."""
    import subprocess

    from tests.support import PROGRAM, cli_env

    space.ok("users", "create", "unprinted@users.test")
    with open("/dev/full", "w") as full:
        result = subprocess.run(
            [*PROGRAM, "--config", str(space.config), "keys", "create", "unprinted@users.test"],
            stdout=full, stderr=subprocess.PIPE, text=True, env=cli_env(None), timeout=60,
            check=False,
        )  # fmt: skip
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert "could not be printed" in line and "revoked" in line and "unexpected" not in line
    assert "No space left on device" in line, line
    assert space.json("keys", "list", "unprinted@users.test") == []


def test_the_audit_entry_of_a_credit_names_the_amount_as_the_balance_is_named(space: Box) -> None:
    """`credit EMAIL 1e2` was taken (100 USD), its audit entry saying `amount_usd: None ->
    1E+2` (Decimal's own text), beside `balance_usd: 0 -> 100`. Amounts are plain decimals now
    (test_cli_usd_amounts.py), and the entry still writes the amount in the same plain USD text
    as the balance, however the decimals were typed."""
    space.ok("users", "create", "notation@users.test")
    for amount in ("100.000", "-10", ".000000001", "2.50"):
        space.ok("credit", "notation@users.test", amount, "--reason", "typed so")
    amounts = [
        e["after"]["amount_usd"]
        for e in space.json("audit")
        if e["command"] == "credit" and e["target"] == "notation@users.test"
    ]
    assert amounts == ["100", "-10", "0.000000001", "2.5"]
    lines = [line for line in space.ok("audit").splitlines() if "notation@users.test" in line]
    assert "amount_usd: None -> 100;" in lines[1] and "E+" not in "".join(lines)


def _to_a_full_disk(space: Box, *args: str) -> subprocess.CompletedProcess[str]:
    """A command run as `codelace-box ... > FILE` on a full disk (stdout: /dev/full)."""
    from tests.support import PROGRAM, cli_env

    with open("/dev/full", "w") as full:
        return subprocess.run(
            [*PROGRAM, "--config", str(space.config), *args],
            stdout=full, stderr=subprocess.PIPE, text=True, env=cli_env(None), timeout=60,
            check=False,
        )  # fmt: skip


def test_a_change_whose_output_cannot_be_written_says_it_was_made(space: Box) -> None:
    """`credit ... > log.txt` on a full disk credited the account, then failed with "unexpected
    OSError: [Errno 28] No space left on device": read as a failed credit, run again, it
    credited twice. The one line says the output was lost and the change was made; a command
    that changed nothing says only that its output could not be written."""
    space.ok("users", "create", "fulldisk@users.test")
    result = _to_a_full_disk(space, "credit", "fulldisk@users.test", "5", "--reason", "once")
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert "unexpected" not in line and "No space left on device" in line, line
    assert "credit" in line and "done" in line and "not run it again" in line, line
    assert space.json("users", "show", "fulldisk@users.test")["credit_balance_usd"] == 5
    listed = _to_a_full_disk(space, "users", "list", "--json")
    assert listed.returncode == 1
    (line,) = listed.stderr.strip().splitlines()
    assert "unexpected" not in line and "No space left on device" in line, line
    assert "done" not in line, line


def test_an_export_with_its_standard_output_closed_is_one_line(space: Box) -> None:
    """`usage export --format csv >&-` (cron with stdout closed) failed with "unexpected
    TypeError: argument 1 must have a "write" method"."""
    import os

    from tests.support import PROGRAM, cli_env

    result = subprocess.run(
        [*PROGRAM, "--config", str(space.config), "usage", "export", "--format", "csv"],
        stderr=subprocess.PIPE, text=True, env=cli_env(None), timeout=60, check=False,
        preexec_fn=lambda: os.close(1),
    )  # fmt: skip
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert "unexpected" not in line and "standard output is closed" in line, line


def test_the_audit_entry_of_a_key_names_its_expiry_in_iso_8601_utc(space: Box) -> None:
    """A key's expiry in the audit log's before/after was Python's `str()` of the moment,
    "2030-01-01 12:00:00", where `keys list` and every other time in the output say
    "2030-01-01T12:00:00Z"; to the microsecond when it has one (`--expires 12h`), as `at`."""
    space.ok("users", "create", "expiry@users.test")
    space.ok("keys", "create", "expiry@users.test", "--expires", "2030-01-01T12:00:00Z")
    (key,) = space.json("keys", "list", "expiry@users.test")
    space.ok("keys", "update", key["id"], "--expires", "12h")
    created, updated = [e for e in space.json("audit") if e["target"] == key["id"]]
    assert created["after"]["expires_at"] == "2030-01-01T12:00:00Z" == key["expires_at"]
    assert updated["before"]["expires_at"] == "2030-01-01T12:00:00Z"
    later = updated["after"]["expires_at"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z", later), later
