"""/api/v1/auth/key with limits: what POST, PATCH and GET show, and bad input refused with a
400 naming the field while nothing changes; the same table through the CLI."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.gateway.conftest import MODEL, Box, BoxFactory
from tests.pg_cluster import write_config_db
from tests.support import run_cli

FIELDS = {"id", "key_prefix", "name", "created_at", "last_used_at", "spent_usd", "limit_usd",
          "limit_reset", "expires_at", "allowed_models", "can_manage_keys"}  # fmt: skip
LATER = "2099-01-01T00:00:00Z"
BAD: list[tuple[str, Any]] = [
    ("limit_usd", -1),
    ("limit_usd", "NaN"),
    ("limit_usd", "Infinity"),
    ("limit_usd", 0.0000000001),
    ("limit_usd", "1.0000000001"),
    ("limit_usd", "1e2"),  # text is plain decimals: not an exponent form, read as $100
    ("limit_usd", "2.5E-1"),
    ("limit_usd", "0x10"),
    ("limit_usd", "1_000"),
    ("limit_usd", "-Infinity"),
    ("limit_usd", True),
    ("limit_usd", [5]),
    ("limit_usd", 10**10),
    ("limit_reset", "yearly"),
    ("limit_reset", 7),
    ("expires_at", "2001-01-01T00:00:00Z"),
    ("expires_at", "next tuesday"),
    ("expires_at", 1893456000),
    ("expires_at", "9999-12-31T23:59:59-01:00"),  # past year 9999 in UTC
    ("expires_at", "0001-01-01T00:00:00+01:00"),  # before year 1 in UTC
    ("expires_at", "2030-01-01T00:00:00\u0000"),  # CPython's fromisoformat skips a last NUL
    ("allowed_models", ["fake/no-such-model"]),
    ("allowed_models", "fake/gpt-test"),
    ("allowed_models", []),
    ("allowed_models", [MODEL, 5]),
    ("allowed_models", [MODEL + "\u0000"]),  # PostgreSQL takes no NUL in a query's text
    ("can_manage_keys", "false"),
    ("can_manage_keys", 0),
    ("can_manage_keys", None),
    ("can_manage_keys", [False]),
]


@pytest.fixture(scope="module")
def box(box_factory: BoxFactory) -> Box:
    return box_factory()


def test_a_key_created_with_limits_shows_them(box: Box) -> None:
    _, login = box.new_user("1")
    made = box.http(login).post(
        "/api/v1/auth/key",
        json={"name": "ci", "limit_usd": "20.5", "limit_reset": "monthly",
              "expires_at": "2099-06-30T12:00:00+02:00", "allowed_models": [MODEL, MODEL]},
    )  # fmt: skip
    assert made.status_code == 200, made.text
    body = made.json()
    assert set(body) == FIELDS - {"created_at", "last_used_at"} | {"full_key"}
    listed = box.http(login).get("/api/v1/auth/key").json()
    key = next(k for k in listed if k["id"] == body["id"])
    assert set(key) == FIELDS | {"expired"}  # listed: whether it is past its expiry
    assert key["expired"] is False and key["spent_usd"] == 0
    assert (key["limit_usd"], key["limit_reset"]) == (20.5, "monthly")
    assert key["expires_at"] == "2099-06-30T10:00:00Z"
    assert key["allowed_models"] == [MODEL]
    plain = next(k for k in listed if k["id"] != body["id"])  # the key made by the CLI
    assert {f: plain[f] for f in ("limit_usd", "limit_reset", "expires_at", "allowed_models")} == {
        "limit_usd": None, "limit_reset": None, "expires_at": None, "allowed_models": None
    }  # fmt: skip


def test_patch_changes_only_the_fields_given_and_null_clears(box: Box) -> None:
    _, login = box.new_user("1")
    made = (
        box.http(login)
        .post(
            "/api/v1/auth/key",
            json={"name": "a", "limit_usd": 3, "limit_reset": "weekly", "expires_at": LATER},
        )
        .json()
    )
    url = f"/api/v1/auth/key/{made['id']}"
    renamed = box.http(login).patch(url, json={"name": "b"}).json()
    assert (renamed["name"], renamed["limit_usd"], renamed["limit_reset"]) == ("b", 3, "weekly")
    assert renamed["expires_at"] == LATER
    cleared = box.http(login).patch(url, json={"limit_reset": None, "expires_at": None}).json()
    assert (cleared["limit_usd"], cleared["limit_reset"], cleared["expires_at"]) == (3, None, None)
    assert box.http(login).patch(url, json={"bogus": 1}).status_code == 400
    _other_email, other = box.new_user("1")
    assert box.http(other).patch(url, json={"name": "mine"}).status_code == 404  # not theirs
    assert box.http(login).patch("/api/v1/auth/key/not-a-uuid", json={}).status_code == 404


def test_a_limit_reset_of_none_means_no_reset_as_the_spec_lists_it(box: Box) -> None:
    """The SPEC lists limit_reset as daily, weekly, monthly or none: "none" (as the CLI takes
    it) is the same as null, at creation and in a PATCH."""
    _, login = box.new_user("1")
    made = box.http(login).post("/api/v1/auth/key", json={"name": "n", "limit_reset": "none"})
    assert made.status_code == 200, made.text
    assert made.json()["limit_reset"] is None
    url = f"/api/v1/auth/key/{made.json()['id']}"
    assert box.http(login).patch(url, json={"limit_reset": "weekly"}).json()["limit_reset"] == (
        "weekly"
    )
    patched = box.http(login).patch(url, json={"limit_reset": "None"})
    assert patched.status_code == 200 and patched.json()["limit_reset"] is None


def test_the_limit_reset_refusal_lists_only_what_the_api_takes(box: Box) -> None:
    """A bad `limit_reset` answered "must be daily, weekly, monthly, or none / null (never)",
    but the API refuses the string "never" (only the CLI takes it): each value the message
    lists (a bare `null`: JSON null) is taken by a PATCH."""
    _, login = box.new_user("1")
    made = box.http(login).post("/api/v1/auth/key", json={"name": "r"})
    url = f"/api/v1/auth/key/{made.json()['id']}"
    refused = box.http(login).patch(url, json={"limit_reset": "yearly"})
    assert refused.status_code == 400, refused.text
    listed = refused.json()["error"]["message"].split("must be ", 1)[1]
    values = [w for w in re.findall(r"[a-z]+", listed) if w != "or"]
    assert {"daily", "weekly", "monthly"} <= set(values), values
    for value in values:
        sent = None if value == "null" else value
        taken = box.http(login).patch(url, json={"limit_reset": sent})
        assert taken.status_code == 200, (value, taken.text)


def test_a_patch_without_a_body_changes_nothing(box: Box) -> None:
    """Every field absent (no body at all, as POST takes it): the key and the profile as they
    were, not a 400."""
    _, login = box.new_user("1")
    made = box.http(login).post("/api/v1/auth/key", json={"name": "kept", "limit_usd": 2})
    url = f"/api/v1/auth/key/{made.json()['id']}"
    patched = box.http(login).patch(url)
    assert patched.status_code == 200, patched.text
    assert (patched.json()["name"], patched.json()["limit_usd"]) == ("kept", 2)
    profile = box.http(login).patch("/api/v1/auth/me")
    assert profile.status_code == 200, profile.text


@pytest.fixture(scope="module")
def account(box: Box) -> tuple[str, str, str]:
    """One account for the bad-input tables: (email, its key, that key's id)."""
    email, login = box.new_user("1")
    return email, login, box.http(login).get("/api/v1/auth/key").json()[0]["id"]


@pytest.mark.parametrize(("field", "value"), BAD, ids=[f"{f}={v!r}" for f, v in BAD])
def test_bad_limits_are_a_400_naming_the_field_and_change_nothing(
    box: Box, account: tuple[str, str, str], field: str, value: Any
) -> None:
    _, login, _ = account
    before = box.http(login).get("/api/v1/auth/key").json()
    created = box.http(login).post("/api/v1/auth/key", json={"name": "x", field: value})
    assert created.status_code == 400, created.text
    error = created.json()["error"]
    assert error["param"] == field and error["message"].startswith(field)
    assert box.http(login).get("/api/v1/auth/key").json() == before  # no key was made
    key_id = before[0]["id"]
    patched = box.http(login).patch(
        f"/api/v1/auth/key/{key_id}", json={"name": "renamed", "limit_usd": 1, field: value}
    )
    assert patched.status_code == 400 and patched.json()["error"]["param"] == field
    assert box.http(login).get("/api/v1/auth/key").json() == before  # nor anything changed


def test_a_cap_in_text_is_plain_decimals_and_the_400_says_what_is_taken(
    box: Box, account: tuple[str, str, str]
) -> None:
    """`"limit_usd": "1e2"` made a key capped at $100: a cap written as text is read as plain
    decimals only (as people write money), and the refusal says what is taken. A JSON number
    is the number it is, however a serializer writes it (json.dumps(1e-05) is `1e-05`)."""
    _, login, _ = account
    refused = box.http(login).post("/api/v1/auth/key", json={"name": "x", "limit_usd": "1e2"})
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error", "invalid_limit", "limit_usd"
    )  # fmt: skip
    assert "1e2" in error["message"] and "such as 20 or 12.5" in error["message"], error
    assert "at most 9 decimals" in error["message"], error
    for given, shown in (("12.5", 12.5), ("  7 ", 7), ("0.000000001", 1e-09), (1e2, 100)):
        made = box.http(login).post("/api/v1/auth/key", json={"name": "y", "limit_usd": given})
        assert made.status_code == 200 and made.json()["limit_usd"] == shown, (given, made.text)
        box.http(login).delete(f"/api/v1/auth/key/{made.json()['id']}")


@pytest.mark.parametrize("field", ["limit", "limit_usd_cents", "expires", "models", "Name"])
def test_a_field_a_key_does_not_have_is_a_400_when_making_one_too(
    box: Box, account: tuple[str, str, str], field: str
) -> None:
    """A misspelt limit (OpenRouter's `limit`, say) must not make a key without the limit the
    caller meant: POST refuses what it does not know, as PATCH does, and makes no key."""
    _, login, _ = account
    before = box.http(login).get("/api/v1/auth/key").json()
    created = box.http(login).post("/api/v1/auth/key", json={"name": "ci", field: 20})
    assert created.status_code == 400, created.text
    error = created.json()["error"]
    assert error["param"] == field and error["message"].startswith(field)
    assert box.http(login).get("/api/v1/auth/key").json() == before


CLI_BAD = [  # every refusal a usage error (exit 2) naming the option, as every bad value's
    ("--limit-usd", "-1", "'--limit-usd'"),
    ("--limit-usd", "nan", "'--limit-usd'"),
    ("--limit-usd", "0.0000000001", "'--limit-usd'"),
    ("--limit-usd", "1e2", "'--limit-usd'"),
    ("--limit-usd", "1000000001", "'--limit-usd': must be at most"),
    ("--limit-reset", "yearly", "'--limit-reset': must be \"daily\""),
    ("--expires", "2001-01-01", "'--expires': 2001-01-01 is in the past"),
    ("--expires", "soon", "'--expires': cannot read"),
    ("--expires", "9999-12-31T23:00:00-05:00", "'--expires': 9999-12-31"),
    ("--models", "fake/no-such-model", "'--models'"),
    # empty (the dashboard's blank field clears): a usage error saying what to give, not the
    # API's "must be a list of 1 to 50 model ids, or null"
    ("--models", "", "'--models': names no model: give model ids, or 'all' for every model"),
    ("--models", " , ", "'--models': names no model: give model ids, or 'all' for every model"),
]


@pytest.mark.parametrize(("option", "value", "field"), CLI_BAD)
def test_the_cli_refuses_bad_limits_in_one_line(
    box: Box, account: tuple[str, str, str], option: str, value: str, field: str
) -> None:
    email, login, key_id = account

    def keys_now() -> list[dict[str, object]]:  # without last_used_at: listing uses the key
        listed = box.http(login).get("/api/v1/auth/key").json()
        return [{k: v for k, v in key.items() if k != "last_used_at"} for key in listed]

    keys_before = keys_now()
    for args in (("keys", "create", email, option, value),
                 ("keys", "update", key_id, "--name", "renamed", option, value)):  # fmt: skip
        result = run_cli(box.config, *args)
        assert result.returncode == 2, result
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and field in lines[0], result.stderr
    assert keys_now() == keys_before


def test_the_cli_sets_and_clears_limits(box: Box) -> None:
    email, _ = box.new_user("1")
    made = box.cli("keys", "create", email, "--limit-usd", "20", "--limit-reset", "monthly",
                   "--expires", "30d", "--models", MODEL)  # fmt: skip
    assert made.startswith("cl_")
    key = next(k for k in _keys(box, email) if k["limit_usd"] == 20)
    expires = datetime.fromisoformat(key["expires_at"].replace("Z", "+00:00"))
    assert abs(expires - (datetime.now(UTC) + timedelta(days=30))) < timedelta(minutes=5)
    assert (key["limit_reset"], key["allowed_models"]) == ("monthly", [MODEL])
    box.cli("keys", "update", key["id"][:8], "--limit-usd", "none", "--models", "all",
            "--expires", "never", "--limit-reset", "none")  # fmt: skip
    key = next(k for k in _keys(box, email) if k["id"] == key["id"])
    assert [key[f] for f in ("limit_usd", "limit_reset", "expires_at", "allowed_models")] == [
        None, None, None, None
    ]  # fmt: skip
    shown = box.cli("keys", "update", key["id"][:8], "--models", MODEL)  # as --models takes them
    assert f"allowed_models: {MODEL}\n" in shown + "\n" and "[" not in shown, shown
    for bad in (("--rpm", "-1"), ("--concurrent", "many"), ("--rpm", "1.5")):
        result = run_cli(box.config, "users", "limits", email, *bad)
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1


def test_models_none_is_refused_not_read_as_every_model(box: Box) -> None:
    """`--models none` lifted the key's model list (every model allowed), the opposite of what
    an operator typing it to block the dear models means: 'all' lifts it (and 'null', the
    SPEC's null); 'none' and 'never' are a usage error (exit 2) naming --models, and nothing
    changes."""
    email, _ = box.new_user("1")
    box.cli("keys", "create", email, "--models", MODEL)
    key = next(k for k in _keys(box, email) if k["allowed_models"] == [MODEL])
    for word in ("none", "None", "never"):
        result = run_cli(box.config, "keys", "update", key["id"][:8], "--models", word)
        assert result.returncode == 2, result
        assert "--models" in result.stderr and "'all'" in result.stderr, result.stderr
        made = run_cli(box.config, "keys", "create", email, "--models", word)
        assert made.returncode == 2 and "cl_" not in made.stdout, made
    assert sorted((k["allowed_models"] for k in _keys(box, email)), key=str) == [None, [MODEL]]


def test_keys_list_shows_the_models_a_key_may_call_beside_its_other_limits(box: Box) -> None:
    """`keys list` showed a key's cap, reset, scope and expiry but not `--models`: a key the
    operator had restricted looked unrestricted there (only --json told)."""
    email, _ = box.new_user("1")
    box.cli("keys", "create", email, "--name", "narrow", "--models", MODEL)
    box.cli("keys", "create", email, "--name", "open")
    header, *rows = box.cli("keys", "list", email).splitlines()
    column = header.split().index("ALLOWED_MODELS")
    mine = [row.split() for row in rows if row.split()[2] in ("narrow", "open")]
    shown = {cells[2]: cells[column] for cells in mine}  # each of their cells one word
    assert shown == {"narrow": MODEL, "open": "-"}, rows


def _keys(box: Box, email: str) -> list[dict[str, Any]]:
    import json

    keys: list[dict[str, Any]] = json.loads(box.cli("keys", "list", email, "--json"))
    return keys


def test_the_cli_clears_a_limit_with_null_as_the_spec_and_its_own_error_say(box: Box) -> None:
    """The SPEC says `limit_reset` null is never and `null` clears a limit, and `keys update
    --limit-reset yearly` answers "must be daily, weekly, monthly, or none / null (never)";
    yet `--limit-reset null` was refused with that very line (and `--limit-usd null`,
    `--expires null`, `--models null` as not an amount, time or model). On the command line
    `null` clears a limit as `none` does."""
    email, _ = box.new_user("1")
    box.cli("keys", "create", email, "--limit-usd", "20", "--limit-reset", "monthly",
            "--expires", "30d", "--models", MODEL)  # fmt: skip
    key = next(k for k in _keys(box, email) if k["limit_usd"] == 20)
    for option in ("--limit-reset", "--limit-usd", "--expires", "--models"):
        result = run_cli(box.config, "keys", "update", key["id"][:8], option, "null")
        assert result.returncode == 0, (option, result.stderr)
    key = next(k for k in _keys(box, email) if k["id"] == key["id"])
    assert [key[f] for f in ("limit_usd", "limit_reset", "expires_at", "allowed_models")] == [
        None, None, None, None
    ]  # fmt: skip


def test_the_cli_takes_the_limits_under_the_spec_s_field_names_too(box: Box) -> None:
    """The SPEC names a key's limits `limit_usd`, `limit_reset`, `expires_at` and
    `allowed_models` and says they are set by `keys create/update`; --limit-usd and
    --limit-reset worked, but `--expires-at` and `--allowed-models` (a reader's spelling of the
    other two) were 'No such option'. They are other names of --expires and --models."""
    email, _ = box.new_user("1")
    made = run_cli(box.config, "keys", "create", email, "--limit-usd", "3", "--expires-at",
                   LATER, "--allowed-models", MODEL)  # fmt: skip
    assert made.returncode == 0, made.stderr
    key = next(k for k in _keys(box, email) if k["limit_usd"] == 3)
    assert (key["expires_at"], key["allowed_models"]) == (LATER, [MODEL])
    changed = run_cli(box.config, "keys", "update", key["id"][:8], "--expires-at", "never",
                      "--allowed-models", "all")  # fmt: skip
    assert changed.returncode == 0, changed.stderr
    key = next(k for k in _keys(box, email) if k["id"] == key["id"])
    assert (key["expires_at"], key["allowed_models"]) == (None, None)


@pytest.mark.parametrize("text", ["1e-400", "0.0000000001"])
def test_a_cap_is_read_exactly_as_written(
    box: Box, account: tuple[str, str, str], text: str
) -> None:
    """A JSON number read as a float: 1e-400 underflowed to 0.0, a cap of 0 USD where the
    client asked for a cap finer than a nano-dollar, which is refused as written."""
    _, login, key_id = account
    head = {"content-type": "application/json"}
    created = box.http(login).post(
        "/api/v1/auth/key", content=f'{{"name": "x", "limit_usd": {text}}}', headers=head
    )
    assert created.status_code == 400, created.text
    assert created.json()["error"]["param"] == "limit_usd"
    patched = box.http(login).patch(
        f"/api/v1/auth/key/{key_id}", content=f'{{"limit_usd": {text}}}', headers=head
    )
    assert patched.status_code == 400, patched.text


def test_keys_list_says_a_key_has_expired(box: Box) -> None:
    """A key past its expiry is refused (401 key_expired); the dashboard reads "expired
    <date>" and the portal "Expired", but `keys list` showed the bare date beside the live
    keys' dates, to compare with today. The table says so; `--json` keeps the date alone."""
    email, _ = box.new_user("1")
    box.cli("keys", "create", email, "--name", "past", "--expires", "2099-01-02")
    box.cli("keys", "create", email, "--name", "future", "--expires", "2099-01-01")
    past = "UPDATE api_key SET expires_at = '2025-01-01 00:00:00' WHERE name = 'past'"
    write_config_db(box.config, past)  # what the year 2099 will do to it
    rows = {row.split()[2]: row for row in box.cli("keys", "list", email).splitlines()[1:]}
    assert "expired 2025-01-01" in rows["past"], rows
    assert "expired" not in rows["future"] and "2099-01-01" in rows["future"], rows
    listed = {k["name"]: k["expires_at"] for k in _keys(box, email)}
    assert listed["past"] == "2025-01-01T00:00:00Z", listed
