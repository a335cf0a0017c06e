"""The audit log: every admin command (CLI and dashboard) leaves exactly one entry, with the
right before and after, no secret, and a hash chain that `doctor` checks; on PostgreSQL too
with CODELACE_TEST_DATABASE=postgres (but for the SQLite files' own commands: `backup`, `db
copy` from a file, `init`)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from admin_tui.service_audit import entries as audit_entries
from admin_tui.services import AdminServices, ModelForm
from admin_tui.views import KeyLimitsForm
from codelace_box.config import load_config
from codelace_box.db.core import close_database, open_database, schema_target, write_transaction
from codelace_box.db.migrate import LATEST_VERSION
from codelace_box.db.migrations import MIGRATIONS
from codelace_box.db.models import SchemaMigration
from tests.acceptance.cli_tools import Box
from tests.admin.pilot import make_env
from tests.pg_cluster import query_config_db, use_engine, wanted_engine, write_config_db
from tests.support import free_port, run_cli, write_config

PROVIDER_KEY = "sk-audit-provider-secret-0123456789"
SECOND_KEY = "sk-audit-second-secret-9876543210"


def entries(box: Box) -> list[dict[str, Any]]:
    return json.loads(box.ok("audit", "--json"))


class AuditBox(Box):
    """A CLI box whose database is the one its config names: its SQLite file, or with
    CODELACE_TEST_DATABASE=postgres a fresh database of the shared cluster (pg_cluster.py)."""

    @property
    def target(self) -> str:
        """What open_database takes: the file's path, or the PostgreSQL URL."""
        return str(load_config(str(self.config), {}).database.target)

    def sql(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run SQL on the box's database beside it, as an operator would (SELECT: its rows)."""
        if not self.target.startswith("postgresql://"):
            return super().sql(statement, params)
        if statement.lstrip().upper().startswith("SELECT"):
            return query_config_db(self.config, statement, params)
        write_config_db(self.config, statement, params)
        return []


def audit_box(root: Path, **sections: dict[str, Any]) -> AuditBox:
    """A CLI box in `root` on the engine the tests ask for (tests/pg_cluster.py)."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    merged = use_engine({"server": {"port": port}, "database": {"path": "data/codelace.db"}})
    for name, keys in sections.items():
        merged.setdefault(name, {}).update(keys)
    return AuditBox(root, write_config(root / "codelace.toml", merged), port)


def test_the_boxes_here_are_on_the_engine_the_tests_ask_for(tmp_path: Path) -> None:
    box = audit_box(tmp_path, server={"secret_key": "audit-tests-secret-0123456789abcdef"})
    box.ok("users", "create", "ana@example.com")
    database = load_config(str(box.config), {}).database
    on_postgres = database.target.startswith("postgresql://")
    assert on_postgres == (wanted_engine() == "postgres"), database.target
    assert box.sql("SELECT target FROM audit_log") == [("ana@example.com",)]


def test_every_cli_admin_command_leaves_one_entry_with_its_before_and_after(
    tmp_path: Path,
) -> None:
    box = audit_box(tmp_path, server={"secret_key": "audit-tests-secret-0123456789abcdef"})
    commands = [
        ("users create", ("users", "create", " Ana@Example.COM")),  # target: as stored
        ("users disable", ("users", "disable", "ana@example.com")),
        ("users enable", ("users", "enable", "ana@example.com")),
        ("credit", ("credit", "ana@example.com", "12.5", "--reason", "welcome")),
        ("keys create", ("keys", "create", "ana@example.com", "--name", "laptop")),
        ("providers add", ("providers", "add", "acme", "--kind", "openai", "--key", PROVIDER_KEY)),
        ("providers key-add", ("providers", "key-add", "acme", "--key", SECOND_KEY)),
        ("providers update", ("providers", "update", "acme", "--base-url", "http://127.0.0.1:9/v1")),
        ("providers disable", ("providers", "disable", "acme")),
        ("providers enable", ("providers", "enable", "acme")),
        ("models set", ("models", "set", "acme/m1", "--input-per-1m", "1", "--output-per-1m", "2")),
        ("models set", ("models", "set", "acme/m1", "--input-per-1m", "3", "--output-per-1m", "2")),
        ("models disable", ("models", "disable", "acme/m1")),
        ("models enable", ("models", "enable", "acme/m1")),
        ("models alias", ("models", "alias", "m1", "acme/m1")),
        ("models unalias", ("models", "unalias", "m1")),
    ]  # fmt: skip
    outputs = [box.ok(*args) for _, args in commands]
    key_id = box.sql("SELECT uuid FROM api_key")[0][0]
    box.ok("keys", "revoke", key_id[:8])
    box.fail("users", "create", "ana@example.com")  # refused: nothing recorded
    box.fail("models", "disable", "acme/none")
    log = entries(box)
    assert [e["command"] for e in log] == [c for c, _ in commands] + ["keys revoke"]
    assert all(e["client"] == "cli" and e["os_user"] for e in log)
    e = log
    assert (e[0]["target"], e[0]["before"]) == ("ana@example.com", None)
    assert e[0]["after"]["status"] == "active" and e[0]["after"]["balance_usd"] == "0"
    assert (e[1]["before"]["status"], e[1]["after"]["status"]) == ("active", "disabled")
    assert (e[2]["before"]["status"], e[2]["after"]["status"]) == ("disabled", "active")
    assert (e[3]["before"]["balance_usd"], e[3]["after"]["balance_usd"]) == ("0", "12.5")
    assert e[3]["after"]["reason"] == "welcome"
    assert e[4]["before"] is None and e[4]["after"]["name"] == "laptop"
    assert e[4]["target"] == e[4]["after"]["id"] == key_id and not e[4]["after"]["revoked"]
    assert e[5]["before"] is None and len(e[5]["after"]["keys"]) == 1
    assert (len(e[6]["before"]["keys"]), len(e[6]["after"]["keys"])) == (1, 2)
    assert (e[7]["before"]["base_url"], e[7]["after"]["base_url"]) == ("", "http://127.0.0.1:9/v1")
    assert (e[8]["before"]["enabled"], e[8]["after"]["enabled"]) == (True, False)
    assert (e[9]["before"]["enabled"], e[9]["after"]["enabled"]) == (False, True)
    assert e[10]["before"] is None and e[10]["after"]["output_per_1m"] == "2"
    assert (e[11]["before"]["input_per_1m"], e[11]["after"]["input_per_1m"]) == ("1", "3")
    assert (e[12]["before"]["enabled"], e[12]["after"]["enabled"]) == (True, False)
    assert (e[14]["before"], e[14]["after"]) == (None, {"name": "m1", "model": "acme/m1"})
    assert (e[15]["before"], e[15]["after"]) == ({"name": "m1", "model": "acme/m1"}, None)
    assert (e[16]["target"], e[16]["before"]["revoked"], e[16]["after"]["revoked"]) == (
        key_id, False, True,
    )  # fmt: skip

    stored = json.dumps(box.sql("SELECT * FROM audit_log"))
    assert PROVIDER_KEY not in stored and SECOND_KEY not in stored
    full_key = outputs[4].split()[0]
    assert full_key.startswith("cl_") and full_key not in stored and full_key[:7] in stored
    assert "ana@example.com" in box.ok("audit", "--since", "1h")
    assert json.loads(box.ok("audit", "--since", "2999-01-01", "--json")) == []
    assert box.ok("doctor").startswith("ok")


def test_removing_a_model_records_the_aliases_that_went_with_it(tmp_path: Path) -> None:
    """`models remove` deletes the model's aliases too (a client sending `claude-haiku-4-5`
    gets 404 from then on): the entry's before names them, so the log shows that change."""
    box = audit_box(tmp_path, server={"secret_key": "audit-tests-secret-0123456789abcdef"})
    box.ok("providers", "add", "acme", "--kind", "openai", "--key", PROVIDER_KEY)
    box.ok("models", "set", "acme/m1", "--input-per-1m", "1", "--output-per-1m", "2")
    box.ok("models", "alias", "m1-b", "acme/m1")
    box.ok("models", "alias", "m1-a", "acme/m1")
    box.ok("models", "remove", "acme/m1")
    removed = entries(box)[-1]
    assert (removed["command"], removed["after"]) == ("models remove", None)
    assert removed["before"]["aliases"] == ["m1-a", "m1-b"]
    assert box.ok("doctor").startswith("ok")


def test_an_upgrade_of_the_schema_is_an_entry_and_a_new_databases_creation_is_not(
    tmp_path: Path,
) -> None:
    """`migrate` (or any command, serve and the dashboard too, that finds the schema behind)
    changes the database under every box: the entry names the version it had and has. A new
    database's creation changes nothing anyone had, so it leaves none (the test above)."""
    box = audit_box(tmp_path, server={"secret_key": "audit-tests-secret-0123456789abcdef"})
    box.db_path.parent.mkdir(parents=True, exist_ok=True)
    db = open_database(box.target)
    with write_transaction():
        db.create_tables([SchemaMigration])
        for version, module in MIGRATIONS[:20]:
            module.apply(schema_target(db))
            SchemaMigration.create(version=version, name=module.NAME)
    close_database()
    assert box.ok("migrate").startswith(f"migrated from schema version 20 to {LATEST_VERSION}: 21 ")
    (upgrade,) = entries(box)
    assert (upgrade["command"], upgrade["target"], upgrade["client"]) == (
        "migrate", "schema", "cli",
    )  # fmt: skip
    assert upgrade["before"] == {"schema_version": 20}
    assert upgrade["after"] == {
        "schema_version": LATEST_VERSION, "applied": list(range(21, LATEST_VERSION + 1)),
    }  # fmt: skip
    box.ok("migrate")  # nothing to do: no entry
    assert len(entries(box)) == 1 and box.ok("doctor").startswith("ok")


def test_a_backup_is_an_entry_naming_the_copy(tmp_path: Path) -> None:
    """A backup copies every account and payment: who took one, and where to, is logged (a
    SQLite file's command: on PostgreSQL `backup` points to pg_dump)."""
    box = Box.create(tmp_path, server={"secret_key": "audit-tests-secret-0123456789abcdef"})
    box.ok("users", "create", "ana@example.com")
    copy = tmp_path / "copies" / "one.db"
    copy.parent.mkdir()
    box.ok("backup", str(copy))
    taken = entries(box)[-1]
    assert (taken["command"], taken["target"], taken["before"]) == ("backup", str(copy), None)
    assert taken["after"]["path"] == str(copy) and taken["after"]["pages"] > 0
    assert box.ok("doctor").startswith("ok")


def test_the_os_user_is_the_processs_own_not_what_the_environment_says(tmp_path: Path) -> None:
    """$USER and $LOGNAME are whatever the shell exported (`USER=bob codelace-box ...`): the
    entry names the account the process runs as, and who became it through sudo (admins
    commonly run the CLI as the service's account: its name alone says nobody)."""
    import pwd

    me = pwd.getpwuid(os.geteuid()).pw_name
    box = audit_box(tmp_path)
    spoof = {"USER": "mallory", "LOGNAME": "mallory", "USERNAME": "mallory", "LNAME": "mallory"}
    box.ok("users", "create", "a@example.com", env=spoof)
    box.ok("users", "create", "b@example.com", env={**spoof, "SUDO_USER": "alice"})
    assert [e["os_user"] for e in entries(box)] == [me, f"{me} (sudo from alice)"]


def test_a_name_sudo_passes_that_is_not_utf8_is_recorded_not_a_failure(tmp_path: Path) -> None:
    """sudo passes the invoking account's name as /etc/passwd holds it: one in a legacy
    encoding (Latin-1 `josé`) is bytes that are not UTF-8. Every audited command failed on it,
    saying "'<a hash>{...the entry...}' is not UTF-8 text": no admin change could be made
    under sudo by that account. The bytes that are not UTF-8 are recorded as \\xNN."""
    import pwd

    me = pwd.getpwuid(os.geteuid()).pw_name
    box = audit_box(tmp_path)
    box.ok("users", "create", "a@example.com", env={"SUDO_USER": "jos\udce9"})
    assert [e["os_user"] for e in entries(box)] == [f"{me} (sudo from jos\\xe9)"]
    box.ok("doctor")  # the entry's chain holds


def test_a_name_sudo_passes_is_recorded_without_terminal_controls(tmp_path: Path) -> None:
    """SUDO_USER is an environment variable like any other: an escape sequence or a direction
    mark in it reached `audit`'s table and the dashboard raw (erasing or repainting the lines
    before it), where every other text of an entry (reasons, names, ids) is refused with one.
    It is recorded with those characters written as escapes."""
    import pwd

    me = pwd.getpwuid(os.geteuid()).pw_name
    box = audit_box(tmp_path)
    box.ok("users", "create", "a@example.com", env={"SUDO_USER": "ev\x1b[2K\u202eil"})
    assert [e["os_user"] for e in entries(box)] == [f"{me} (sudo from ev\\x1b[2K\\u202eil)"]
    assert "\x1b" not in box.ok("audit")


def test_doctor_fails_when_an_entry_is_changed_or_removed(tmp_path: Path) -> None:
    box = audit_box(tmp_path)
    for email in ("a@example.com", "b@example.com", "c@example.com"):
        box.ok("users", "create", email)
    assert box.ok("doctor").startswith("ok")
    box.sql("UPDATE audit_log SET target = 'z@example.com' WHERE id = 2")
    assert "entry 2: its content does not match its hash" in box.cli("doctor").stdout
    box.sql("UPDATE audit_log SET target = 'b@example.com' WHERE id = 2")
    assert box.ok("doctor").startswith("ok")
    box.sql("DELETE FROM audit_log WHERE id = 2")
    result = box.cli("doctor")
    assert result.returncode == 1
    assert "entry 3: does not follow the entry before it" in result.stdout


def test_doctor_fails_when_the_newest_entries_or_the_whole_log_are_removed(
    tmp_path: Path,
) -> None:
    """Removing the newest entries leaves a chain that is intact as far as it goes: only a
    record of how far it went shows the loss (as the last change of a careless admin, or every
    change, deleted to hide them)."""
    box = audit_box(tmp_path)
    for email in ("a@example.com", "b@example.com", "c@example.com"):
        box.ok("users", "create", email)
    box.sql("DELETE FROM audit_log WHERE id = (SELECT MAX(id) FROM audit_log)")
    result = box.cli("doctor")
    assert result.returncode == 1, result.stdout
    assert "audit log" in result.stdout and "removed" in result.stdout
    box.sql("DELETE FROM audit_log")
    result = box.cli("doctor")
    assert result.returncode == 1 and "audit log" in result.stdout, result.stdout


def test_an_entry_whose_state_is_no_json_object_any_more_is_a_clear_problem(
    tmp_path: Path,
) -> None:
    """An entry edited by hand into text that is no JSON (`{`) or JSON that is no object
    (`[1]`): doctor crashed on the first with `unexpected JSONDecodeError` (no entry named, the
    other checks unsaid), `audit` on both (nothing listed at all); now doctor names each entry
    among its problems and audit lists the log, such a state shown as the text it holds."""
    box = audit_box(tmp_path)
    for email in ("a@example.com", "b@example.com"):
        box.ok("users", "create", email)
    box.ok("credit", "a@example.com", "5", "--reason", "r")
    box.sql("UPDATE audit_log SET after_state = '{' WHERE id = 2")
    box.sql("UPDATE audit_log SET before_state = '[1]' WHERE id = 3")
    box.sql("UPDATE audit_log SET before_state = 5 WHERE id = 1")  # kept as the text 5
    result = box.cli("doctor")
    assert result.returncode == 1, result.stdout + result.stderr
    for entry in (1, 2, 3):
        assert f"entry {entry}: its content does not match its hash" in result.stdout, result
    assert "unexpected" not in result.stdout + result.stderr
    listed = entries(box)
    assert [e["target"] for e in listed] == ["a@example.com", "b@example.com", "a@example.com"]
    assert listed[1]["after"] == {"(unreadable)": "{"}
    assert listed[2]["before"] == {"(unreadable)": "[1]"}
    assert listed[0]["before"] == {"(unreadable)": "5"}
    assert "(unreadable): [1] -> None" in box.ok("audit")  # the table too


def test_a_gap_in_the_ids_alone_is_not_a_problem(tmp_path: Path) -> None:
    box = audit_box(tmp_path)
    box.ok("users", "create", "a@example.com")
    if box.target.startswith("postgresql://"):  # a sequence skips the values of rolled-back inserts
        box.sql("SELECT setval(pg_get_serial_sequence('audit_log', 'id'), 6)")
        ids = [1, 7]
    else:
        box.sql("UPDATE audit_log SET id = 7 WHERE id = 1")  # as a PostgreSQL sequence may skip
        ids = [7, 8]
    box.ok("users", "create", "b@example.com")
    assert [e["id"] for e in entries(box)] == ids
    assert box.ok("doctor").startswith("ok")


@pytest.fixture
def services(tmp_path: Path) -> Any:
    env = make_env(tmp_path)
    admin = AdminServices(env.config)
    yield admin
    close_database()


def test_every_dashboard_action_leaves_one_entry_as_client_admin(services: Any) -> None:
    admin = services
    call = admin._call  # the database thread's body, run here
    count = 0

    def last(command: str) -> Any:
        nonlocal count
        found = call(audit_entries, 200)
        assert len(found) == count + 1, [e.command for e in found[count:]]
        count += 1
        entry = found[-1]
        assert (entry.client, entry.command) == ("admin", command)
        return entry

    user = call(admin.create_user, " Bo@Example.COM ")
    created = last("users create")
    assert (created.target, created.after["email"]) == ("bo@example.com", "bo@example.com")
    call(admin.set_user_active, "bo@example.com", False)
    assert last("users disable").after["status"] == "disabled"
    call(admin.set_user_active, "bo@example.com", True)
    assert last("users enable").before["status"] == "disabled"
    call(admin.adjust_balance, "bo@example.com", "3", "gift")
    assert last("credit").after["balance_usd"] == "3"
    call(admin.add_provider, "acme", "openai", "", PROVIDER_KEY)
    assert last("providers add").after["name"] == "acme"
    call(admin.add_provider_key, "acme", SECOND_KEY)
    entry = last("providers key-add")
    key_id = entry.after["keys"][0]["id"]
    [acme] = [p for p in call(admin.providers) if p.name == "acme"]
    [shown] = [k for k in acme.keys if k.id == key_id]  # the row the operator acts on
    call(admin.set_key_enabled, "acme", shown, False)
    entry = last("providers key-disable")
    assert entry.target == "acme" and entry.after["keys"][0]["enabled"] is False
    call(admin.rotate_key, "acme", shown, "sk-audit-third-secret-0123456789")
    assert len(last("providers key-rotate").after["keys"]) == 3
    call(admin.set_provider_enabled, "acme", False)
    assert last("providers disable").after["enabled"] is False
    form = ModelForm("acme/m", "1", "2", provider="acme")
    call(admin.save_model, form, new=True)
    assert last("models set").after["input_per_1m"] == "1"
    call(admin.set_model_enabled, "acme/m", False)
    assert last("models disable").after["enabled"] is False
    full_key, key = call(admin.create_key, user.id, "laptop")
    entry = last("keys create")
    assert entry.target == key.id and entry.before is None
    assert (entry.after["name"], entry.after["key_prefix"]) == ("laptop", full_key[:7])
    call(admin.set_key_limits, key.id, KeyLimitsForm(limit_usd="5"))
    assert last("keys update").after["limit_usd"] == "5"
    call(admin.revoke_key, key.id)
    assert last("keys revoke").after["revoked"] is True
    call(admin.set_user_limits, "bo@example.com", "60", "")
    assert last("users limits").after["rpm"] == 60
    rows = call(audit_entries, 200)
    assert "secret" not in json.dumps([[e.before, e.after] for e in rows])
    assert full_key not in json.dumps([[e.before, e.after] for e in rows])


def test_a_db_copy_is_an_entry_on_the_copy(tmp_path: Path) -> None:
    """`db copy` makes a second home of every account, balance and key hash: the copy's log
    says where it came from, who made it and how much it holds (and still proves itself)."""
    secret = {"secret_key": "audit-tests-secret-0123456789abcdef"}
    box = Box.create(tmp_path / "source", server=secret)
    box.ok("users", "create", "ana@example.com")
    copy = tmp_path / "copy.db"
    box.ok("db", "copy", "--to", f"sqlite:///{copy}")
    assert [e["command"] for e in entries(box)] == ["users create"]  # the source is unchanged
    moved = Box(tmp_path / "moved", write_config(tmp_path / "moved.toml", {
        "database": {"url": f"sqlite:///{copy}"},
        "server": secret,
    }), 0)  # fmt: skip
    log = entries(moved)
    assert [e["command"] for e in log] == ["users create", "db copy"]
    copied = log[-1]
    assert copied["client"] == "cli" and copied["target"] == f"sqlite:///{copy}"
    assert copied["before"] is None
    assert copied["after"]["from"] == f"sqlite:///{box.db_path}"
    assert copied["after"]["rows"] > 0 and copied["after"]["tables"] > 0
    assert moved.ok("doctor").startswith("ok")


def test_init_over_a_box_in_use_is_an_entry_and_a_first_init_writes_no_database(
    tmp_path: Path,
) -> None:
    """`init --force` rewrites the config of a box that has data (its secret kept or not): an
    operator change like any other, logged in the database that config names. A first `init`,
    before any database, creates none to log it in."""
    first = run_cli(None, "init", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert not (tmp_path / "data").exists()
    box = Box(tmp_path, tmp_path / "codelace.toml", 0)
    box.ok("users", "create", "ana@example.com")
    again = box.ok("init", "--force")
    assert "kept the server secret" in again
    log = entries(box)
    assert [e["command"] for e in log] == ["users create", "init"]
    done = log[-1]
    assert done["target"] == str(tmp_path / "codelace.toml")
    assert done["before"] == {"config": str(tmp_path / "codelace.toml"), "existed": True}
    secret = load_config(str(tmp_path / "codelace.toml"), {}).server.secret_key
    assert secret not in json.dumps(done) and done["after"]["server_secret"].startswith("kept")
    assert box.ok("doctor").startswith("ok")


def test_provider_key_changes_read_as_the_other_changes_do(tmp_path: Path) -> None:
    """A provider's keys showed as a Python list of dicts in `audit`'s CHANGES column
    (`keys: [{'id': 1, 'hint': 'sk-…6789', 'enabled': True, ...}] -> [...]`) and as JSON on
    the dashboard's F6: each key now by its id and hint, and what came, went or changed."""
    from admin_tui.screens.audit import changes

    box = audit_box(tmp_path, server={"secret_key": "audit-tests-secret-0123456789abcdef"})
    box.ok("providers", "add", "acme", "--kind", "openai", "--key", PROVIDER_KEY)
    box.ok("providers", "key-add", "acme", "--key", SECOND_KEY)
    box.ok("providers", "key-remove", "acme", "1")
    table = box.ok("audit")
    first, second = f"key 1 ({PROVIDER_KEY[:3]}…6789)", f"key 2 ({SECOND_KEY[:3]}…3210)"
    assert f"{second} added" in table and f"{first} removed" in table, table
    assert "{" not in table and "'hint'" not in table, table
    open_database(box.target)
    try:
        shown = [changes(entry) for entry in audit_entries(10)]
    finally:
        close_database()
    assert shown[1:] == [f"{second} added", f"{first} removed"], shown


def test_list_changes_read_as_words_not_python_text(tmp_path: Path) -> None:
    """`audit`'s CHANGES column showed lists as Python text (`allowed_models: None -> ['a/b',
    'c/d']`, `aliases: [] -> ['x']`) and the dashboard as JSON: lists are comma-joined words
    now, an empty one "none", the same on both."""
    from admin_tui.screens.audit import changes

    box = audit_box(tmp_path, server={"secret_key": "audit-tests-secret-0123456789abcdef"})
    box.ok("providers", "add", "acme", "--kind", "openai", "--key", PROVIDER_KEY)
    box.ok("models", "set", "acme/m1", "--input-per-1m", "1", "--output-per-1m", "2")
    box.ok("models", "set", "acme/m2", "--input-per-1m", "1", "--output-per-1m", "2")
    box.ok("users", "create", "ana@example.com")
    box.ok("keys", "create", "ana@example.com", "--name", "k")
    key = json.loads(box.ok("keys", "list", "ana@example.com", "--json"))[0]
    box.ok("keys", "update", key["id"], "--models", "acme/m1,acme/m2")
    box.ok("providers", "update", "acme", "--allow-field", "models", "--allow-field", "route")
    box.ok("providers", "update", "acme", "--no-allow-field", "models", "--no-allow-field", "route")
    table = box.ok("audit")
    assert "[" not in table and "'" not in table, table
    open_database(box.target)
    try:
        shown = [changes(entry) for entry in audit_entries(10)]
    finally:
        close_database()
    assert "[" not in "".join(shown), shown
    lists = [line.split(": ", 1)[1].split(" -> ")[1] for line in shown if " -> " in line]
    assert lists == ["acme/m1, acme/m2", "models, route", "none"], shown
    for words in lists:
        assert f"-> {words}" in table, (words, table)
