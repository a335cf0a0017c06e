"""The admin CLI as an operator runs it (a subprocess on a temp data dir): version, migrate,
users, credit and keys, with their exit codes, one-line errors and --json output."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import tomllib

from codelace_box import __version__
from codelace_box.db.migrate import LATEST_VERSION
from tests.foundation.conftest import Workspace
from tests.support import PROGRAM, REPO_ROOT, cli_env, is_uuid4

KEY_RE = re.compile(r"^cl_[A-Za-z0-9]{40}$")


def test_version_prints_the_package_version(workspace: Workspace) -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert __version__ == project["version"]
    assert workspace.run("version").stdout == f"codelace-box {__version__}\n"


def test_migrate_applies_once_then_has_nothing_to_do(fresh_workspace: Workspace) -> None:
    first = fresh_workspace.run("migrate").stdout
    made = f"set up a new database at schema version {LATEST_VERSION} "
    assert first == made + f"(all {LATEST_VERSION} migrations)\n", first
    again = fresh_workspace.run("migrate").stdout
    assert again == f"already at schema version {LATEST_VERSION}, nothing to do\n", again
    assert fresh_workspace.db_path.is_file()


def test_users_create_list_show(workspace: Workspace) -> None:
    out = workspace.run("users", "create", "  Ada@Example.COM ").stdout
    created = re.fullmatch(r"created user (\S+) ada@example\.com\n", out)
    assert created and is_uuid4(created[1]), out
    listed = workspace.json("users", "list")
    ada = next(u for u in listed if u["email"] == "ada@example.com")
    assert ada["id"] == created[1]
    assert created[1] in workspace.run("users", "list").stdout
    assert ada["status"] == "active"
    assert ada["credit_balance_usd"] == 0
    assert ada["active_keys"] == 0 and ada["requests"] == 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", ada["created_at"])
    assert "ada@example.com" in workspace.run("users", "list").stdout
    assert workspace.json("users", "list", "--search", "ADA@") == [ada]
    shown = workspace.json("users", "show", "ADA@example.com")
    assert shown["id"] == ada["id"] and shown["keys"] == []
    human = workspace.run("users", "show", "ada@example.com").stdout
    assert "email: ada@example.com" in human and "status: active" in human
    assert f"id: {ada['id']}" in human


def test_users_errors_are_one_line(workspace: Workspace) -> None:
    workspace.run("users", "create", "dupe@example.com")
    assert "already exists" in workspace.fail("users", "create", "DUPE@example.com")
    assert "not a valid email address" in workspace.fail("users", "create", "not-an-email")
    assert "no user with email ghost@example.com" in workspace.fail(
        "users", "show", "ghost@example.com"
    )
    assert "no user" in workspace.fail("users", "disable", "ghost@example.com")
    assert "Missing argument 'EMAIL'" in workspace.fail("users", "show", code=2)
    assert "No such command 'delete'" in workspace.fail("users", "delete", "x@y.z", code=2)


def test_users_disable_and_enable(workspace: Workspace) -> None:
    workspace.run("users", "create", "grace@example.com")
    assert workspace.run("users", "disable", "grace@example.com").stdout == (
        "grace@example.com is now disabled\n"
    )
    assert workspace.json("users", "show", "grace@example.com")["status"] == "disabled"
    workspace.run("users", "enable", "grace@example.com")
    assert workspace.json("users", "show", "grace@example.com")["status"] == "active"


def ledger_rows(workspace: Workspace, email: str) -> list[tuple[int, str, str]]:
    return [
        (int(r[0]), r[1], r[2])
        for r in workspace.sql(
            'SELECT l.amount_nanos, l.kind, l.reason FROM ledger_entry l JOIN "user" u '
            "ON u.id = l.user_id WHERE u.email = ? ORDER BY l.id",
            (email,),
        )
    ]


def test_credit_adds_and_removes_through_the_ledger(workspace: Workspace) -> None:
    workspace.run("users", "create", "linus@example.com")
    out = workspace.run("credit", "linus@example.com", "5", "--reason", "welcome").stdout
    assert out == "linus@example.com: balance now 5.0 USD\n"
    workspace.run("credit", "linus@example.com", "-1.25", "--reason", "correction")
    workspace.run("credit", "linus@example.com", "0.000000001", "--reason", "one nano")
    assert workspace.json("users", "show", "linus@example.com")["credit_balance_usd"] == 3.750000001
    assert ledger_rows(workspace, "linus@example.com") == [
        (5_000_000_000, "admin", "welcome"),
        (-1_250_000_000, "admin", "correction"),
        (1, "admin", "one nano"),
    ]
    payments = workspace.sql(
        'SELECT p.kind, p.status, p.amount_nanos FROM payment p JOIN "user" u ON u.id = '
        "p.user_id WHERE u.email = 'linus@example.com' ORDER BY p.id"
    )
    assert payments[0] == ("admin", "completed", 5_000_000_000) and len(payments) == 3


def test_credit_refuses_bad_amounts_and_overdrafts(workspace: Workspace) -> None:
    workspace.run("users", "create", "ken@example.com")
    workspace.run("credit", "ken@example.com", "2", "--reason", "seed")
    assert "below zero" in workspace.fail("credit", "ken@example.com", "-2.01", "--reason", "x")
    assert "not a USD amount: 'abc'" in workspace.fail(
        "credit", "ken@example.com", "abc", "--reason", "x", code=2
    )
    assert "non-zero" in workspace.fail("credit", "ken@example.com", "0", "--reason", "x", code=2)
    assert "not a USD amount: '1_000'" in workspace.fail(
        "credit", "ken@example.com", "1_000", "--reason", "x", code=2
    )
    assert "not a USD amount: '\u0665'" in workspace.fail(  # Decimal reads it as 5
        "credit", "ken@example.com", "\u0665", "--reason", "x", code=2
    )
    assert "not a USD amount: '1.1234567891'" in workspace.fail(
        "credit", "ken@example.com", "1.1234567891", "--reason", "x", code=2
    )
    assert "at most 9 decimals" in workspace.fail(
        "credit", "ken@example.com", "0.0000000001", "--reason", "x", code=2
    )
    assert "at most 1,000,000 USD" in workspace.fail(
        "credit", "ken@example.com", "1000001", "--reason", "x", code=2
    )
    assert "needs a reason" in workspace.fail(
        "credit", "ken@example.com", "1", "--reason", " ", code=2
    )
    for reason in ("ticket 12\nsee thread", "ok\x1b[2K\rforged audit line", "r" * 1001):
        assert "'--reason': must" in workspace.fail(
            "credit", "ken@example.com", "1", "--reason", reason, code=2
        )
    assert "Missing option '--reason'" in workspace.fail("credit", "ken@example.com", "1", code=2)
    assert "no user" in workspace.fail("credit", "nobody@example.com", "1", "--reason", "x")
    assert ledger_rows(workspace, "ken@example.com") == [(2_000_000_000, "admin", "seed")]
    assert workspace.json("users", "show", "ken@example.com")["credit_balance_usd"] == 2.0


def test_keys_create_list_revoke(workspace: Workspace) -> None:
    workspace.run("users", "create", "barbara@example.com")
    created = workspace.run("keys", "create", "barbara@example.com", "--name", "laptop")
    full_key = created.stdout.strip()
    assert KEY_RE.match(full_key), created.stdout
    assert "store it now" in created.stderr and full_key not in created.stderr
    keys = workspace.json("keys", "list", "barbara@example.com")
    assert is_uuid4(keys[0]["id"]) and f"key id {keys[0]['id']} (" in created.stderr
    assert [(k["name"], k["key_prefix"]) for k in keys] == [("laptop", full_key[:7])]
    assert keys[0]["last_used_at"] is None
    human = workspace.run("keys", "list", "barbara@example.com").stdout
    assert full_key[:7] in human and full_key not in human
    assert "laptop" in human and keys[0]["id"] in human
    stored = workspace.sql(
        "SELECT key_hash, key_prefix FROM api_key WHERE uuid = ?", (keys[0]["id"],)
    )
    assert stored and full_key not in repr(stored)  # only a hash is stored
    assert workspace.json("users", "show", "barbara@example.com")["keys"] == keys
    assert keys[0]["id"] in workspace.run("users", "show", "barbara@example.com").stdout
    out = workspace.run("keys", "revoke", keys[0]["id"]).stdout
    assert out == f"revoked key {keys[0]['id']} ({full_key[:7]}...)\n"
    assert workspace.json("keys", "list", "barbara@example.com") == []
    assert "no active API key" in workspace.fail("keys", "revoke", keys[0]["id"])
    assert "no active API key" in workspace.fail("keys", "revoke", "abc-not-a-key")
    assert "no user" in workspace.fail("keys", "create", "nobody@example.com")


def test_an_expired_key_is_not_counted_or_listed_as_active(workspace: Workspace) -> None:
    """`users list` counted a key past its expiry (401 key_expired on every call) among the
    account's `active_keys`, and `keys list` said it lists "active keys": the count is of
    keys that work, and the listings say which key has expired."""
    workspace.run("users", "create", "lapsed@example.com")
    for name in ("old", "live"):
        workspace.run("keys", "create", "lapsed@example.com", "--name", name)
    listed = workspace.json("keys", "list", "lapsed@example.com")
    old = next(k for k in listed if k["name"] == "old")
    workspace.sql("UPDATE api_key SET expires_at = ? WHERE uuid = ?", ("2020-01-01", old["id"]))
    [lapsed] = workspace.json("users", "list", "--search", "lapsed@")
    assert lapsed["active_keys"] == 1
    shown = workspace.run("users", "show", "lapsed@example.com").stdout
    [row] = [line for line in shown.splitlines() if line.startswith(old["id"])]
    assert "expired 2020-01-01" in row, shown
    assert "active keys" not in workspace.run("keys", "list", "--help").stdout


def key_ids(workspace: Workspace, email: str) -> list[str]:
    return [k["id"] for k in workspace.json("keys", "list", email)]


def test_keys_revoke_takes_a_unique_prefix_of_the_uuid(workspace: Workspace) -> None:
    workspace.run("users", "create", "prefix@example.com")
    for name in ("one", "two"):
        workspace.run("keys", "create", "prefix@example.com", "--name", name)
    first, second = key_ids(workspace, "prefix@example.com")
    out = workspace.run("keys", "revoke", first[:8].upper()).stdout
    assert out.startswith(f"revoked key {first} (")
    assert key_ids(workspace, "prefix@example.com") == [second]
    assert "no active API key with id" in workspace.fail("keys", "revoke", first[:8])


def test_an_ambiguous_prefix_is_one_line_naming_the_keys(workspace: Workspace) -> None:
    workspace.run("users", "create", "twins@example.com")
    for _ in range(2):
        workspace.run("keys", "create", "twins@example.com")
    first, second = key_ids(workspace, "twins@example.com")
    twin = "abcdef01" + second[8:]  # the same first 8 characters as the other key
    workspace.sql("UPDATE api_key SET uuid = ? WHERE uuid = ?", ("abcdef01" + first[8:], first))
    workspace.sql("UPDATE api_key SET uuid = ? WHERE uuid = ?", (twin, second))
    message = workspace.fail("keys", "revoke", "abcdef01")
    assert "'abcdef01' is ambiguous" in message, message
    assert "abcdef01" + first[8:] in message and twin in message
    assert len(key_ids(workspace, "twins@example.com")) == 2  # nothing revoked
    assert workspace.run("keys", "revoke", twin[:20]).stdout.startswith(f"revoked key {twin} (")


def test_keys_revoke_refuses_the_old_integer_ids_and_never_echoes_a_key(
    workspace: Workspace,
) -> None:
    workspace.run("users", "create", "oldid@example.com")
    full_key = workspace.run("keys", "create", "oldid@example.com").stdout.strip()
    (integer_id,) = workspace.sql(
        "SELECT k.id FROM api_key k JOIN user u ON u.id = k.user_id WHERE u.email = ?",
        ("oldid@example.com",),
    )[0]
    workspace.sql(  # its UUID starting with its integer id would be the same key both ways
        "UPDATE api_key SET uuid = 'f' || substr(uuid, 2) WHERE id = ?", (integer_id,)
    )
    message = workspace.fail("keys", "revoke", str(integer_id))
    assert "looks like an old numeric id" in message and "UUIDs" in message, message
    pasted = workspace.fail("keys", "revoke", full_key)
    assert "no active API key" in pasted and full_key[3:] not in pasted
    assert "Missing argument 'KEY_ID'" in workspace.fail("keys", "revoke", code=2)
    assert len(key_ids(workspace, "oldid@example.com")) == 1


def test_commands_naming_an_account_refuse_an_old_integer_id(workspace: Workspace) -> None:
    """Accounts had integer ids before their UUIDs (as keys did): `users disable 3`, typed
    from habit or an old script, named by prefix the one account whose UUID starts with 3
    and disabled it (or credited it). A short all-digit id that is another account's integer
    id is refused, as for keys; eight digits and more are a UUID's start."""
    for email in ("num-a@example.com", "num-b@example.com"):
        workspace.run("users", "create", email)
    ((old_id,),) = workspace.sql("SELECT id FROM user WHERE email = 'num-b@example.com'")
    digits = str(old_id)
    workspace.sql("UPDATE user SET uuid = ? WHERE email = ?",
                  (digits + "a" * (8 - len(digits)) + "-89ab-4cde-8f01-23456789abcd",
                   "num-a@example.com"))  # fmt: skip
    workspace.sql("UPDATE user SET uuid = ? WHERE email = ?",
                  ("12345678-89ab-4cde-8f01-23456789abcd", "num-b@example.com"))  # fmt: skip
    for command in (("users", "disable", digits), ("credit", digits, "5", "--reason", "x"),
                    ("users", "show", digits), ("keys", "create", digits)):  # fmt: skip
        message = workspace.fail(*command)
        assert "looks like an old numeric id" in message and "UUIDs" in message, message
    shown = workspace.json("users", "show", "num-a@example.com")
    assert (shown["status"], shown["credit_balance_usd"], shown["keys"]) == ("active", 0.0, [])
    assert workspace.json("users", "show", "12345678")["email"] == "num-b@example.com"


def _key_row(workspace: Workspace, email: str) -> tuple[int, str]:
    """The integer id and UUID of the one key of `email`."""
    rows = workspace.sql(
        "SELECT k.id, k.uuid FROM api_key k JOIN user u ON u.id = k.user_id WHERE u.email = ?",
        (email,),
    )
    return int(rows[0][0]), str(rows[0][1])


def test_a_digit_prefix_no_old_id_could_mean_is_an_ordinary_prefix(workspace: Workspace) -> None:
    """Every all-digit prefix under 8 characters was refused as an old integer id, so on a
    box whose ids are all UUIDs `keys revoke 4821` failed though 4821 was the unique start of
    a key's UUID (6-15% of a UUID's 4-6 first characters are digits only): it is refused only
    when a row has that integer id and the prefix names another row (or none, or several)."""
    workspace.run("users", "create", "digits@example.com")
    workspace.run("keys", "create", "digits@example.com")
    row_id, key_uuid = _key_row(workspace, "digits@example.com")
    assert row_id < 4821  # no key has the integer id 4821
    taken = "48210000" + key_uuid[8:]
    workspace.sql("UPDATE api_key SET uuid = ? WHERE uuid = ?", (taken, key_uuid))
    user = "48219999-89ab-4cde-8f01-23456789abcd"
    workspace.sql("UPDATE user SET uuid = ? WHERE email = ?", (user, "digits@example.com"))
    assert workspace.json("users", "show", "4821")["email"] == "digits@example.com"
    assert "no user with email or id '4820'" in workspace.fail("users", "show", "4820")
    assert "no active API key with id '4820'" in workspace.fail("keys", "revoke", "4820")
    revoked = workspace.run("keys", "revoke", "4821").stdout
    assert revoked.startswith(f"revoked key {taken} ("), revoked


def test_an_old_id_is_refused_unless_it_names_the_same_row_both_ways(
    workspace: Workspace,
) -> None:
    """A key whose integer id is N and whose UUID starts with N (alone among the active keys)
    is the same key either way: taken. Another key starting with N: refused, as before."""
    workspace.run("users", "create", "both@example.com")
    workspace.run("keys", "create", "both@example.com")
    row_id, key_uuid = _key_row(workspace, "both@example.com")
    workspace.sql(  # other keys of the module starting with those digits start otherwise
        "UPDATE api_key SET uuid = 'f' || substr(uuid, 2) WHERE uuid LIKE ? AND id != ?",
        (f"{row_id}%", row_id),
    )
    same = f"{row_id}{key_uuid[len(str(row_id)) :]}"
    workspace.sql("UPDATE api_key SET uuid = ? WHERE uuid = ?", (same, key_uuid))
    revoked = workspace.run("keys", "revoke", str(row_id)).stdout
    assert revoked.startswith(f"revoked key {same} ("), revoked
    workspace.run("users", "create", "both-b@example.com")
    workspace.run("keys", "create", "both-b@example.com")
    other_id, other_uuid = _key_row(workspace, "both-b@example.com")
    moved = f"{row_id}f{other_uuid[len(str(row_id)) + 1 :]}"  # starts with another row's id
    workspace.sql("UPDATE api_key SET uuid = ? WHERE uuid = ?", (moved, other_uuid))
    message = workspace.fail("keys", "revoke", str(row_id))
    assert "looks like an old numeric id" in message, message
    assert other_id != row_id and len(key_ids(workspace, "both-b@example.com")) == 1


def test_a_digit_prefix_with_a_leading_zero_is_no_old_id(workspace: Workspace) -> None:
    """An old integer id was never written with a leading zero, so `keys revoke 07` names the
    key whose UUID starts 07, though a key with the integer id 7 exists (1 UUID in 16 starts
    with 0): it was refused as "looks like an old numeric id"."""
    workspace.run("users", "create", "zero-a@example.com")
    workspace.run("keys", "create", "zero-a@example.com")
    workspace.run("users", "create", "zero-b@example.com")
    workspace.run("keys", "create", "zero-b@example.com")
    row_id, _ = _key_row(workspace, "zero-a@example.com")
    other_id, other_uuid = _key_row(workspace, "zero-b@example.com")
    prefix = f"0{row_id}"
    workspace.sql(  # no other key or user of the module starts with those digits
        "UPDATE api_key SET uuid = 'f' || substr(uuid, 2) WHERE uuid LIKE ?", (f"{prefix}%",)
    )
    workspace.sql(
        "UPDATE user SET uuid = 'f' || substr(uuid, 2) WHERE uuid LIKE ?", (f"{prefix}%",)
    )
    taken = prefix + other_uuid[len(prefix) :]
    workspace.sql("UPDATE api_key SET uuid = ? WHERE id = ?", (taken, other_id))
    user = prefix + "f" * (8 - len(prefix)) + "-89ab-4cde-8f01-23456789abcd"
    workspace.sql("UPDATE user SET uuid = ? WHERE email = ?", (user, "zero-b@example.com"))
    assert workspace.json("users", "show", prefix)["email"] == "zero-b@example.com"
    revoked = workspace.run("keys", "revoke", prefix).stdout
    assert revoked.startswith(f"revoked key {taken} ("), revoked


def test_human_tables_show_missing_values_as_a_dash(workspace: Workspace) -> None:
    workspace.run("users", "create", "dash@example.com")
    workspace.run("keys", "create", "dash@example.com")
    row = workspace.run("keys", "list", "dash@example.com").stdout.splitlines()[1]
    assert row.rstrip().endswith("-")
    assert "None" not in row


def test_a_database_another_process_keeps_locked_is_one_clear_line(
    fresh_workspace: Workspace,
) -> None:
    fresh_workspace.run("migrate")
    holder = sqlite3.connect(fresh_workspace.db_path, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")  # e.g. an operator's sqlite3 shell mid-transaction
        line = fresh_workspace.fail("users", "create", "locked@example.com")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert line.startswith("error: the database is locked by another process"), line
    assert fresh_workspace.json("users", "list") == []


def test_a_reader_that_stops_reading_ends_the_command_quietly(workspace: Workspace) -> None:
    """`codelace-box users list | head -1`: no 'unexpected BrokenPipeError' on the screen."""
    workspace.run("users", "create", "pipe@example.com")
    command = [*PROGRAM, "--config", str(workspace.config), "users", "list", "--json"]
    child = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env(None)
    )
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()  # long before the command prints
    stderr = child.stderr.read()
    assert child.wait(30) == 141  # 128 + SIGPIPE, as the shell reports such an end
    assert stderr == b""


def test_commands_naming_an_account_take_its_uuid_or_a_unique_start_of_it(
    workspace: Workspace,
) -> None:
    """The contract: users are identified by UUIDs, and the CLI shows and accepts them (a
    unique prefix is enough): wherever a command names an account, its id works too."""
    for email in ("uid-a@example.com", "uid-b@example.com"):
        workspace.run("users", "create", email)
    ids = {u["email"]: u["id"] for u in workspace.json("users", "list", "--search", "uid-")}
    workspace.sql("UPDATE user SET uuid = ? WHERE email = ?",
                  ("abcdef01" + ids["uid-a@example.com"][8:], "uid-a@example.com"))  # fmt: skip
    workspace.sql("UPDATE user SET uuid = ? WHERE email = ?",
                  ("abcdef02" + ids["uid-b@example.com"][8:], "uid-b@example.com"))  # fmt: skip
    full = "abcdef01" + ids["uid-a@example.com"][8:]
    assert workspace.json("users", "show", full)["email"] == "uid-a@example.com"
    assert workspace.json("users", "show", full.upper())["email"] == "uid-a@example.com"
    assert workspace.run("credit", "abcdef01", "2", "--reason", "by id").stdout.startswith(
        "uid-a@example.com: balance now 2"
    )
    key = workspace.run("keys", "create", "abcdef02").stdout.strip()
    assert [k["key_prefix"] for k in workspace.json("keys", "list", "abcdef02")] == [key[:7]]
    assert workspace.run("users", "disable", "abcdef01").stdout == (
        "uid-a@example.com is now disabled\n"
    )
    assert workspace.run("users", "enable", full).stdout == "uid-a@example.com is now active\n"
    workspace.run("users", "limits", "abcdef02", "--rpm", "7")
    assert workspace.json("users", "show", "uid-b@example.com")["rpm"] == 7
    message = workspace.fail("users", "show", "abcdef0")
    assert "'abcdef0' is ambiguous" in message and full in message, message
    assert "no user with email or id 'ffff'" in workspace.fail(
        "credit", "ffff", "1", "--reason", "x"
    )
    assert "not a valid email address" in workspace.fail("users", "show", "bad-email")
    audit = workspace.json("audit")
    targets = {e["target"] for e in audit if e["command"] == "credit"}
    assert "uid-a@example.com" in targets and "abcdef01" not in targets, targets


def test_users_show_and_keys_update_print_amounts_and_blanks_as_the_tables_do(
    workspace: Workspace,
) -> None:
    """Plain notation (0.000001, not 1e-06) and '-' for nothing, as in every table."""
    workspace.run("users", "create", "tiny@example.com")
    workspace.run("credit", "tiny@example.com", "0.000001", "--reason", "a micro-dollar")
    lines = workspace.run("users", "show", "tiny@example.com").stdout.splitlines()
    assert "credit_balance_usd: 0.000001" in lines and "last_seen_at: -" in lines, lines
    values = [line for line in lines if not line.startswith("id: ")]  # a UUID may hold "6e-0"
    assert not any("None" in line or "e-0" in line for line in values), lines
    workspace.run("keys", "create", "tiny@example.com")
    (key,) = workspace.json("keys", "list", "tiny@example.com")
    shown = workspace.run("keys", "update", key["id"], "--limit-usd", "0.000001").stdout
    assert "limit_usd: 0.000001" in shown and "expires_at: -" in shown, shown


def test_text_output_shows_amounts_exact_to_the_nano_dollar_at_any_size(
    workspace: Workspace,
) -> None:
    """Money is integers: the text says what the ledger holds, also above 2**53 nano-USD
    (about $9M), where the --json float (the HTTP API's number) cannot hold every nano."""
    email = "whale@example.com"
    workspace.run("users", "create", email)
    for _ in range(14):
        workspace.run("credit", email, "1000000", "--reason", "top-up")
    out = workspace.run("credit", email, "0.000000003", "--reason", "three nanos").stdout
    assert out == f"{email}: balance now 14000000.000000003 USD\n"
    assert (
        "credit_balance_usd: 14000000.000000003"
        in workspace.run("users", "show", email).stdout.splitlines()
    )
    listed = workspace.run("users", "list", "--search", "whale@").stdout
    assert "14000000.000000003" in listed, listed
    assert workspace.json("users", "show", email)["credit_balance_usd"] == 14000000.000000003
    workspace.run("keys", "create", email)
    (key,) = workspace.json("keys", "list", email)
    shown = workspace.run("keys", "update", key["id"], "--limit-usd", "999999999.999999999")
    assert "limit_usd: 999999999.999999999" in shown.stdout.splitlines(), shown.stdout
    assert "999999999.999999999" in workspace.run("keys", "list", email).stdout
    assert workspace.json("keys", "list", email)[0]["limit_usd"] == 1e9  # the API's float


def test_keys_create_for_a_disabled_account_is_refused_saying_how_to_enable_it(
    workspace: Workspace,
) -> None:
    """A disabled account's requests are a 403 (SPEC): a key made for it could not be used."""
    workspace.run("users", "create", "frozen@example.com")
    workspace.run("users", "disable", "frozen@example.com")
    before = workspace.json("audit")
    message = workspace.fail("keys", "create", "frozen@example.com", "--name", "ci")
    assert "frozen@example.com is disabled" in message, message
    assert "users enable frozen@example.com" in message, message
    assert workspace.json("keys", "list", "frozen@example.com") == []
    assert workspace.json("audit") == before
    workspace.run("users", "enable", "frozen@example.com")
    workspace.run("keys", "create", "frozen@example.com", "--name", "ci")
    assert len(workspace.json("keys", "list", "frozen@example.com")) == 1


def test_users_show_gives_the_limits_in_effect_and_where_they_come_from(
    workspace: Workspace,
) -> None:
    """`rpm: -` read as no limit where the [limits] default of 60 applied."""
    defaults = {"CODELACE_LIMITS_RPM": "60", "CODELACE_LIMITS_MAX_CONCURRENT": "0"}
    workspace.run("users", "create", "lim@example.com")
    text = workspace.run("users", "show", "lim@example.com", env=defaults).stdout
    assert "\nrpm: 60 (default)\n" in text and "\nmax_concurrent: unlimited (default)\n" in text
    assert "effective" not in text  # the lines above say it
    shown = json.loads(
        workspace.run("users", "show", "lim@example.com", "--json", env=defaults).stdout
    )
    assert (shown["rpm"], shown["rpm_effective"]) == (None, 60)
    assert (shown["max_concurrent"], shown["max_concurrent_effective"]) == (None, 0)
    said = workspace.run("users", "limits", "lim@example.com", "--rpm", "7", "--concurrent", "0")
    # "requests 7 per minute, unlimited": which limit was unlimited was left to guess
    assert said.stdout.strip().endswith("requests 7 per minute, unlimited at once"), said.stdout
    said = workspace.run("users", "limits", "lim@example.com", "--rpm", "default", env=defaults)
    assert said.stdout.strip().endswith("requests 60 per minute (default), unlimited at once")
    workspace.run("users", "limits", "lim@example.com", "--rpm", "7")
    text = workspace.run("users", "show", "lim@example.com", env=defaults).stdout
    assert "\nrpm: 7\n" in text and "\nmax_concurrent: unlimited\n" in text
    shown = json.loads(
        workspace.run("users", "show", "lim@example.com", "--json", env=defaults).stdout
    )
    assert (shown["rpm"], shown["rpm_effective"]) == (7, 7)
    assert (shown["max_concurrent"], shown["max_concurrent_effective"]) == (0, 0)
