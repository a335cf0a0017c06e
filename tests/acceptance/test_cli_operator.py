"""Acceptance of the operator's commands (README "Daily tasks"): edit and remove providers,
their keys and models, from outside, on a real data dir, as an operator would type them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.acceptance.cli_tools import Box
from tests.fakes.models_upstream import FakeModelsUpstream
from tests.support import run_cli

pytestmark = pytest.mark.timeout(120)

GOOD_KEY = "sk-operator-good-key-0123456789"
BAD_KEY = "sk-operator-bad-key-9876543210"


@pytest.fixture(scope="module")
def space(tmp_path_factory: pytest.TempPathFactory) -> Box:
    built = Box.create(tmp_path_factory.mktemp("operator"))
    built.ok("migrate")
    return built


@pytest.fixture(scope="module")
def models_upstream() -> Iterator[FakeModelsUpstream]:
    fake = FakeModelsUpstream("openai", {GOOD_KEY}).start()
    yield fake
    fake.stop()


def provider(space: Box, name: str) -> dict[str, object]:
    listed = {p["name"]: p for p in space.json("providers", "list")}
    return dict(listed[name])


def test_providers_update_changes_only_what_is_given(space: Box) -> None:
    space.ok("providers", "add", "edit1", "--kind", "openai", "--key", "sk-edit1-000")
    space.ok("providers", "update", "edit1", "--base-url", "https://example.test/v1")
    assert provider(space, "edit1")["base_url"] == "https://example.test/v1"
    space.ok("providers", "update", "edit1", "--kind", "anthropic")
    after = provider(space, "edit1")
    assert (after["kind"], after["base_url"]) == ("anthropic", "https://example.test/v1")
    assert "nothing to change" in space.fail("providers", "update", "edit1")
    assert "no provider named" in space.fail("providers", "update", "nope", "--kind", "openai")


def test_a_provider_in_use_is_not_removed_and_the_models_are_named(space: Box) -> None:
    space.ok("providers", "add", "rm1", "--kind", "openai", "--key", "sk-rm1-000")
    for model in ("rm1/a", "rm1/b"):
        space.ok("models", "set", model, "--input-per-1m", "1", "--output-per-1m", "2")
    refused = space.fail("providers", "remove", "rm1")
    assert "rm1/a" in refused and "rm1/b" in refused
    assert "rm1" in [p["name"] for p in space.json("providers", "list")]
    space.ok("models", "alias", "rm1-short", "rm1/a")
    assert "rm1-short" in space.ok("models", "remove", "rm1/a")
    space.ok("models", "remove", "rm1/b")
    assert "removed provider rm1" in space.ok("providers", "remove", "rm1")
    assert "rm1" not in [p["name"] for p in space.json("providers", "list")]
    assert space.sql("SELECT count(*) FROM provider_key k LEFT JOIN provider p "
                     "ON p.id = k.provider_id WHERE p.id IS NULL") == [(0,)]  # fmt: skip
    assert "no model" in space.fail("models", "remove", "rm1/a")
    assert "no provider named" in space.fail("providers", "remove", "rm1")


def test_key_remove_takes_only_a_key_of_that_provider(space: Box) -> None:
    space.ok("providers", "add", "kr1", "--kind", "openai", "--key", "sk-kr1-first")
    space.ok("providers", "add", "kr2", "--kind", "openai", "--key", "sk-kr2-first")
    space.ok("providers", "key-add", "kr1", "--key", "sk-kr1-second")
    first, second = [k["id"] for k in provider(space, "kr1")["keys"]]  # type: ignore[attr-defined]
    other = provider(space, "kr2")["keys"][0]["id"]  # type: ignore[index]
    assert "has no key with id" in space.fail("providers", "key-remove", "kr1", str(other))
    result = space.cli("providers", "key-remove", "kr1", str(first))
    assert result.returncode == 0 and "removed key" in result.stdout
    assert result.stderr == ""  # another key still works: no warning
    assert [k["id"] for k in provider(space, "kr1")["keys"]] == [second]  # type: ignore[attr-defined]
    last = space.cli("providers", "key-remove", "kr1", str(second))
    assert last.returncode == 0 and "no working key left" in last.stderr
    assert "sk-kr1" not in last.stdout + last.stderr


def test_a_key_turned_off_is_marked_out_of_rotation_in_the_list(space: Box) -> None:
    """A key turned off in the dashboard is out of rotation, yet `providers list` showed it as
    `3:...cond` like a working one: only failing ('!') and parked keys were marked."""
    space.ok("providers", "add", "off1", "--kind", "openai", "--key", "sk-off1-still-working")
    space.ok("providers", "key-add", "off1", "--key", "sk-off1-turned-off")
    working, off = [k["id"] for k in provider(space, "off1")["keys"]]  # type: ignore[attr-defined]
    space.sql("UPDATE provider_key SET enabled = 0 WHERE id = ?", (off,))  # as the dashboard's x
    row = next(line for line in space.ok("providers", "list").splitlines() if "off1 " in line)
    assert f"{working}:sk-…king, {off}:sk-…-off (off)" in row, row


def test_key_enable_probes_first_and_puts_back_only_a_working_key(
    space: Box, models_upstream: FakeModelsUpstream
) -> None:
    space.ok("providers", "add", "ke1", "--kind", "openai", "--base-url", models_upstream.base_url,
             "--key", GOOD_KEY)  # fmt: skip
    space.ok("providers", "key-add", "ke1", "--key", BAD_KEY)
    good, bad = [k["id"] for k in provider(space, "ke1")["keys"]]  # type: ignore[attr-defined]
    space.sql("UPDATE provider_key SET failing = 1, failure_reason = 'HTTP 401' "
              "WHERE id IN (?, ?)", (good, bad))  # fmt: skip
    refused = space.fail("providers", "key-enable", "ke1", str(bad))
    assert "stays out of rotation" in refused and BAD_KEY not in refused
    assert space.ok("providers", "key-enable", "ke1", str(good)).startswith(f"key {good} of ke1")
    keys = {k["id"]: k for k in provider(space, "ke1")["keys"]}  # type: ignore[attr-defined]
    assert (keys[good]["failing"], keys[good]["enabled"]) == (False, True)
    assert keys[bad]["failing"] is True


def test_key_enable_of_a_key_in_rotation_whose_probe_fails_says_it_stays_in_rotation(
    space: Box, models_upstream: FakeModelsUpstream
) -> None:
    """A refused probe changes nothing: a key that was in rotation stays there, and the line
    says so (it said "stays out of rotation" of a key that never was out)."""
    space.ok("providers", "add", "ke2", "--kind", "openai", "--base-url", models_upstream.base_url,
             "--key", BAD_KEY)  # fmt: skip
    [key] = [k["id"] for k in provider(space, "ke2")["keys"]]  # type: ignore[attr-defined]
    refused = space.fail("providers", "key-enable", "ke2", str(key))
    assert refused.startswith(f"error: key {key} of ke2 stays in rotation (nothing changed): ")
    [after] = provider(space, "ke2")["keys"]  # type: ignore[misc]
    assert (after["enabled"], after["failing"]) == (True, False)  # type: ignore[index]


def test_models_set_changes_only_the_options_given(space: Box) -> None:
    space.ok("providers", "add", "ms1", "--kind", "openai", "--key", "sk-ms1")
    assert "needs both" in space.fail("models", "set", "ms1/new", "--input-per-1m", "1")
    space.ok("models", "set", "ms1/m", "--input-per-1m", "1.25", "--output-per-1m", "10",
             "--max-output-tokens", "4096", "--cache-read-per-1m", "0.125")  # fmt: skip
    space.ok("models", "set", "ms1/m", "--input-per-1m", "2")
    model = {m["id"]: m for m in space.json("models", "list")}["ms1/m"]
    assert (model["input_per_1m"], model["output_per_1m"]) == (2, 10)
    assert (model["max_output_tokens"], model["cache_read_per_1m"]) == (4096, 0.125)
    space.ok("models", "set", "ms1/m", "--max-output-tokens", "100")
    model = {m["id"]: m for m in space.json("models", "list")}["ms1/m"]
    assert (model["input_per_1m"], model["output_per_1m"], model["max_output_tokens"]) == (
        2, 10, 100)  # fmt: skip
    assert "MAX_OUTPUT_TOKENS" in space.ok("models", "list").splitlines()[0]


def test_help_names_the_new_commands(tmp_path: Path) -> None:
    box = Box.create(tmp_path)
    listed = box.ok("providers", "--help")
    for command in ("update", "remove", "key-remove", "key-enable"):
        assert command in listed
    assert "remove" in box.ok("models", "--help")


def test_migrate_status_shows_current_and_pending_and_writes_nothing(tmp_path: Path) -> None:
    box = Box.create(tmp_path)
    before = box.ok("migrate", "--status")
    assert "no database at" in before and "pending: 1 " in before
    assert not box.db_path.exists()
    box.ok("migrate")
    latest = int(box.sql("SELECT max(version) FROM schema_migration")[0][0])
    after = box.ok("migrate", "--status").splitlines()
    assert after[0].startswith(f"schema version {latest} ") and after[-1] == "pending: none"
    box.sql("DELETE FROM schema_migration WHERE version = ?", (latest,))
    pending = box.ok("migrate", "--status")
    assert f"schema version {latest - 1}" in pending and f"pending: {latest} " in pending
    box.sql("INSERT INTO schema_migration (version, name, applied_at) VALUES (999, 'x', '')")
    newer = box.cli("migrate", "--status")
    assert newer.returncode == 1 and "newer than this codelace-box: 999" in newer.stdout


def test_version_verbose_has_schema_and_build_details_and_plain_stays_one_line(
    tmp_path: Path,
) -> None:
    box = Box.create(tmp_path)
    box.ok("migrate")
    plain = box.ok("version")
    assert len(plain.splitlines()) == 1 and plain.startswith("codelace-box ")
    verbose = box.ok("version", "--verbose").splitlines()
    assert verbose[0] == plain.strip()
    fields = dict(line.split(": ", 1) for line in verbose[1:])
    assert {"schema version", "build", "python", "platform", "database engine", "database"} <= set(
        fields
    )
    latest = box.sql("SELECT max(version) FROM schema_migration")[0][0]
    assert fields["schema version"].startswith(f"{latest} ")
    assert f"schema version {latest}" in fields["database"]


def test_version_verbose_says_why_the_database_cannot_be_read(tmp_path: Path) -> None:
    """`version --verbose` is what an operator pastes into a bug report: on a database it
    cannot read it still answers, with the reason (not only the error's class name)."""
    box = Box.create(tmp_path)
    box.db_path.parent.mkdir(parents=True, exist_ok=True)
    box.db_path.write_bytes(b"not a database at all, " * 100)
    verbose = box.ok("version", "--verbose").splitlines()
    fields = dict(line.split(": ", 1) for line in verbose[1:])
    assert "file is not a database" in fields["database"], fields["database"]


def test_version_verbose_says_the_config_could_not_be_loaded_and_why(tmp_path: Path) -> None:
    """With a config it cannot load, `version --verbose` named SQLite as the database engine
    (a guess: the config may well name PostgreSQL) and never said the config was the trouble."""
    config = tmp_path / "codelace.toml"
    config.write_text(
        '[server]\ncolour = "red"\n'
        '[database]\nurl = "postgresql://box:hunter2@127.0.0.1:1/codelace"\n'
    )
    done = run_cli(config, "version", "--verbose")
    assert done.returncode == 0, done.stderr
    assert "hunter2" not in done.stdout + done.stderr
    fields = dict(line.split(": ", 1) for line in done.stdout.splitlines()[1:])
    assert "sqlite" not in fields["database engine"].lower(), fields
    assert fields["database engine"] == "unknown (the config could not be loaded)"
    assert fields["config"].startswith("could not be loaded: "), fields
    assert "unknown key server.colour" in fields["config"], fields
