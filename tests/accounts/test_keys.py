"""API keys and the profile over HTTP, and revocation from the CLI (another process) reaching
a running server; the database and log never hold a key or a code in clear."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.accounts.conftest import (
    BoxClient,
    ServerFactory,
    assert_nothing_secret_stored,
    cli,
    smtp_sections,
)
from tests.fakes.smtp_server import RecordingSmtpServer
from tests.pg_cluster import query_config_db
from tests.support import TLS, ServerProcess, is_uuid4
from tests.timing import seen_within

KEY_RE = re.compile(r"^cl_[A-Za-z0-9]{40}$")
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
pytestmark = pytest.mark.timeout(90)


@pytest.fixture(scope="module")
def box(box_factory: ServerFactory, smtp: RecordingSmtpServer) -> ServerProcess:
    return box_factory(email=smtp_sections(smtp))


@pytest.fixture(scope="module")
def client(box: ServerProcess, smtp: RecordingSmtpServer) -> Iterator[BoxClient]:
    c = BoxClient(box, smtp)
    yield c
    c.close()


def key_of(client: BoxClient, email: str) -> str:
    return str(client.sign_in(email)["api_key"])


def error_code(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    return str(response.json()["error"]["code"])


def stored_last_used(box: ServerProcess, key_id: str) -> Any:
    """last_used_at exactly as stored (microseconds included), read beside the server."""
    sql = "SELECT last_used_at FROM api_key WHERE uuid = ?"
    return query_config_db(box.config, sql, (key_id,))[0][0]


def stored_key_id(box: ServerProcess, key_id: str) -> int:
    """The integer primary key behind a key's UUID (the id the API showed before UUIDs)."""
    return int(
        query_config_db(box.config, "SELECT id FROM api_key WHERE uuid = ?", (key_id,))[0][0]
    )


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer  x", "Basic abc", "Bearer sk-abc", "Bearer cl_" + "a" * 40],
)
def test_missing_or_unknown_keys_get_401(client: BoxClient, authorization: str | None):
    headers = {} if authorization is None else {"authorization": authorization}
    for method, path in [
        ("GET", "/api/v1/auth/me"),
        ("GET", "/api/v1/auth/key"),
        ("POST", "/api/v1/auth/key"),
        ("DELETE", "/api/v1/auth/key/1"),
        ("PATCH", "/api/v1/auth/me"),
    ]:
        response = client.http.request(method, path, headers=headers, json={})
        assert error_code(response, 401) == "invalid_api_key"
        assert response.json()["error"]["type"] == "authentication_error"


def test_the_bearer_scheme_is_case_insensitive_and_the_key_exact(client: BoxClient):
    """RFC 7235: the scheme is case-insensitive and one or more spaces may follow it; the key
    itself must match to the character."""
    key = key_of(client, "scheme@example.com")
    for header in (f"Bearer {key}", f"bearer {key}", f"BEARER   {key}"):
        response = client.http.get("/api/v1/auth/me", headers={"authorization": header})
        assert response.status_code == 200, header
    for header in (
        key,
        f"Token {key}",
        f"Bearer {key.upper()}",
        f"Bearer {key[:-1]}",
        f"Bearer {key}x",
    ):
        response = client.http.get("/api/v1/auth/me", headers={"authorization": header})
        assert error_code(response, 401) == "invalid_api_key", header


def test_profile_can_be_renamed(client: BoxClient):
    key = key_of(client, "carol@example.com")
    response = client.call("PATCH", "/api/v1/auth/me", key, json={"display_name": "  Carol C. "})
    assert response.status_code == 200
    assert response.json()["display_name"] == "Carol C."
    assert client.get("/api/v1/auth/me", key).json()["display_name"] == "Carol C."
    for bad in ({"display_name": 5}, {"name": "x"}, {"display_name": "x" * 101}):
        assert error_code(client.call("PATCH", "/api/v1/auth/me", key, json=bad), 400)
    assert client.get("/api/v1/auth/me", key).json()["display_name"] == "Carol C."


CONTROL_NAMES = [
    "\x1b]0;owned\x07\x1b[2J",
    "x\nstatus: active",
    "tab\there",
    "nul\x00",
    "\u202eevil",
]


def test_names_with_control_characters_are_refused(client: BoxClient, box: ServerProcess):
    """A name reaches the operator's terminal (`users show`, `keys list`): no escape sequences,
    line breaks or direction overrides get in; ordinary Unicode does."""
    key = key_of(client, "eve@example.com")
    for bad in CONTROL_NAMES:
        patched = client.call("PATCH", "/api/v1/auth/me", key, json={"display_name": bad})
        assert error_code(patched, 400) and patched.json()["error"]["param"] == "display_name"
        assert error_code(client.create_key(key, bad), 400)
    fine = "Zoë Ångström 🚀 李"
    assert (
        client.call("PATCH", "/api/v1/auth/me", key, json={"display_name": fine}).json()[
            "display_name"
        ]
        == fine
    )
    assert client.create_key(key, fine).json()["name"] == fine
    shown = cli(box, "users", "show", "eve@example.com")
    assert "\x1b" not in shown and "status: active" in shown and shown.count("status:") == 1


def test_a_lone_surrogate_in_a_name_is_a_400_not_a_500(client: BoxClient):
    """JSON may escape half a UTF-16 pair ("\\ud800"): not Unicode text, so not storable."""
    key = key_of(client, "walt@example.com")
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    for method, path, body in [
        ("PATCH", "/api/v1/auth/me", rb'{"display_name": "a\ud800"}'),
        ("POST", "/api/v1/auth/key", rb'{"name": "\udfffz"}'),
        ("POST", "/api/v1/auth/otp/request", rb'{"email": "a@example.com", "x": ["\udc00"]}'),
    ]:
        response = client.http.request(method, path, content=body, headers=headers)
        assert error_code(response, 400) == "invalid_json", path
    # an escaped pair is one character, and an escaped backslash before "u" is no escape
    paired = rb'{"name": "\ud83d\ude00 \\ud800"}'
    created = client.http.post("/api/v1/auth/key", content=paired, headers=headers)
    assert created.status_code == 200 and created.json()["name"] == "\U0001f600 \\ud800"
    client.keys_seen.append(created.json()["full_key"])


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
def test_a_body_that_is_not_utf8_is_a_400(client: BoxClient, encoding: str):
    """JSON between systems is UTF-8 (RFC 8259 8.1), as OpenAI and Anthropic read it: a UTF-16
    or UTF-32 body was read all the same (Python's json guesses the encoding of bytes), past
    the check of lone surrogates, which looks for their escapes in UTF-8: "\\ud800" in a
    UTF-16 name reached the database, a 500."""
    key = key_of(client, "una@example.com")
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    for method, path, text in [
        ("PATCH", "/api/v1/auth/me", r'{"display_name": "a\ud800"}'),
        ("POST", "/api/v1/auth/key", r'{"name": "\udfffz"}'),
        ("POST", "/api/v1/auth/key", '{"name": "plain"}'),
    ]:
        response = client.http.request(method, path, content=text.encode(encoding), headers=headers)
        assert error_code(response, 400) == "invalid_json", (path, response.text)
    # a UTF-8 body that begins with a byte order mark is still read (RFC 8259 lets parsers)
    marked = '\ufeff{"name": "marked"}'.encode()
    created = client.http.post("/api/v1/auth/key", content=marked, headers=headers)
    assert created.status_code == 200 and created.json()["name"] == "marked", created.text
    client.keys_seen.append(created.json()["full_key"])


def test_create_list_and_delete_keys(client: BoxClient):
    login_key = key_of(client, "dave@example.com")
    response = client.create_key(login_key, "ci runner")
    assert response.status_code == 200
    created = response.json()
    limits = {"spent_usd", "limit_usd", "limit_reset", "expires_at", "allowed_models",
              "can_manage_keys"}  # fmt: skip
    assert set(created) == {"id", "key_prefix", "name", "full_key"} | limits
    assert is_uuid4(created["id"]), created["id"]
    full_key = created["full_key"]
    assert KEY_RE.match(full_key) and created["key_prefix"] == full_key[:7]
    assert created["name"] == "ci runner"

    listing = client.get("/api/v1/auth/key", full_key)
    assert listing.status_code == 200 and full_key not in listing.text
    assert login_key not in listing.text
    rows = {row["id"]: row for row in listing.json()}
    row = rows[created["id"]]
    assert (
        set(row) == {"id", "key_prefix", "name", "created_at", "last_used_at", "expired"} | limits
    )
    assert all(is_uuid4(key_id) for key_id in rows) and len(set(rows)) == 2
    assert row["key_prefix"] == created["key_prefix"] and ISO_Z.match(row["created_at"])
    assert ISO_Z.match(row["last_used_at"])  # it was just used to list
    assert len(rows) == 2

    deleted = client.call("DELETE", f"/api/v1/auth/key/{created['id']}", login_key)
    assert deleted.status_code == 204 and deleted.content == b""
    assert error_code(client.get("/api/v1/auth/me", full_key), 401) == "invalid_api_key"
    assert [r["id"] for r in client.get("/api/v1/auth/key", login_key).json()] != [created["id"]]
    assert len(client.get("/api/v1/auth/key", login_key).json()) == 1
    again = client.call("DELETE", f"/api/v1/auth/key/{created['id']}", login_key)
    assert error_code(again, 404) == "key_not_found"


def test_a_listed_key_past_its_expiry_says_it_has_expired(client: BoxClient):
    """The listing (SPEC: "active keys") carries keys past their expiry, which answer 401
    `key_expired`, with nothing to tell them from working ones but comparing `expires_at` with
    a clock: each says whether it has expired (a field added; the portal and the CLI read it)."""
    login_key = key_of(client, "lapsing@example.com")
    moment = time.time() + 2
    expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment + 1))
    with httpx.Client(base_url=client.http.base_url, timeout=30, verify=TLS) as http:
        headers = {"authorization": f"Bearer {login_key}"}
        made = http.post("/api/v1/auth/key", json={"expires_at": expires}, headers=headers)
        assert made.status_code == 200, made.text
        time.sleep(max(0.0, moment + 1.2 - time.time()))  # until the key has expired
        listed = {
            k["id"]: k["expired"] for k in http.get("/api/v1/auth/key", headers=headers).json()
        }
    assert listed.pop(made.json()["id"]) is True
    assert list(listed.values()) == [False]  # the sign-in's key


def test_bad_key_names_and_ids(client: BoxClient):
    key = key_of(client, "erin@example.com")
    assert error_code(client.create_key(key, 5), 400)
    assert error_code(client.create_key(key, "n" * 101), 400)
    unnamed = client.create_key(key, None)
    assert unnamed.status_code == 200 and unnamed.json()["name"] == ""
    for key_id in ("abc", "0", "99999999", "1" * 40, "-1", "9" * 30, "%20", "x" * 5000):
        response = client.call("DELETE", f"/api/v1/auth/key/{key_id}", key)
        assert error_code(response, 404) == "key_not_found", key_id
        assert response.json()["error"]["type"] == "not_found_error"
    assert client.get("/api/v1/auth/me", key).status_code == 200


def test_a_name_that_is_a_key_is_refused(client: BoxClient):
    """A key renamed to its own full key (a paste into the wrong field) was kept and shown as
    its name in every list: the secret in the clear. A name holding a cl_-shaped token is a
    400 naming the field, at creation and rename; the key's prefix alone is a fine name."""
    login_key = key_of(client, "pasted@example.com")
    made = client.create_key(login_key, "laptop").json()
    other = client.create_key(login_key, "spare").json()["full_key"]
    for name in (made["full_key"], f"key: {other} (old)", "cl_" + "a1B2" * 8):
        renamed = client.call(
            "PATCH", f"/api/v1/auth/key/{made['id']}", login_key, json={"name": name}
        )
        assert error_code(renamed, 400) == "invalid_request", name
        assert renamed.json()["error"]["param"] == "name" and name not in renamed.text
        assert error_code(client.create_key(login_key, name), 400) == "invalid_request"
    listing = client.get("/api/v1/auth/key", login_key)
    assert made["full_key"] not in listing.text and other not in listing.text
    assert {row["name"] for row in listing.json()} >= {"laptop", "spare"}
    prefix = client.call("PATCH", f"/api/v1/auth/key/{made['id']}", login_key,
                         json={"name": made["key_prefix"]})  # fmt: skip
    assert prefix.status_code == 200 and prefix.json()["name"] == made["key_prefix"]


def test_a_name_of_cl_and_a_plain_word_is_no_key(client: BoxClient):
    """A box key's characters are random letters of both cases and digits: `cl_` and a long
    word in one case (`cl_productionserver`, with digits or not) is a name, not a key, and is
    kept; a run of both cases reads as a key."""
    login_key = key_of(client, "cl-words@example.com")
    made = client.create_key(login_key, "laptop").json()
    for name in ("cl_productionserver", "cl_claudecodelaptop2024", "CL_STAGINGSERVER01"):
        assert client.create_key(login_key, name).status_code == 200, name
        renamed = client.call(
            "PATCH", f"/api/v1/auth/key/{made['id']}", login_key, json={"name": name}
        )
        assert renamed.status_code == 200 and renamed.json()["name"] == name, renamed.text
    refused = client.create_key(login_key, "cl_xK9mQ2vR7tL4wZ8p")  # 16 of a key's characters
    assert error_code(refused, 400) == "invalid_request"


def test_a_key_is_deleted_by_its_uuid_not_by_the_old_integer_id(
    client: BoxClient, box: ServerProcess
):
    key = key_of(client, "olga@example.com")
    key_id = client.get("/api/v1/auth/key", key).json()[0]["id"]
    integer_id = stored_key_id(box, key_id)
    unknown = "0" * 8 + key_id[8:]  # shaped like a UUID, the key of no one
    for wrong in (str(integer_id), unknown, key_id[:8], key_id + "0", key_id.replace("-", "")):
        response = client.call("DELETE", f"/api/v1/auth/key/{wrong}", key)
        assert error_code(response, 404) == "key_not_found", wrong
    assert client.get("/api/v1/auth/me", key).status_code == 200
    deleted = client.call("DELETE", f"/api/v1/auth/key/{key_id.upper()}", key)
    assert deleted.status_code == 204
    assert error_code(client.get("/api/v1/auth/me", key), 401) == "invalid_api_key"


def test_a_key_of_someone_else_cannot_be_deleted(client: BoxClient):
    mine = key_of(client, "frank@example.com")
    theirs = key_of(client, "grace@example.com")
    their_id = client.get("/api/v1/auth/key", theirs).json()[0]["id"]
    response = client.call("DELETE", f"/api/v1/auth/key/{their_id}", mine)
    assert error_code(response, 404) == "key_not_found"
    assert client.get("/api/v1/auth/me", theirs).status_code == 200


def test_deleting_the_key_in_use_ends_it_at_once(client: BoxClient):
    key = key_of(client, "heidi@example.com")
    key_id = client.get("/api/v1/auth/key", key).json()[0]["id"]
    assert client.call("DELETE", f"/api/v1/auth/key/{key_id}", key).status_code == 204
    assert error_code(client.get("/api/v1/auth/me", key), 401) == "invalid_api_key"


def test_last_used_at_is_not_written_on_every_request(client: BoxClient, box: ServerProcess):
    key = key_of(client, "ivan@example.com")
    key_id = client.get("/api/v1/auth/key", key).json()[0]["id"]
    first = stored_last_used(box, key_id)
    assert first is not None
    for _ in range(5):
        assert client.get("/api/v1/auth/me", key).status_code == 200
    assert stored_last_used(box, key_id) == first


def _first_status_after(client: BoxClient, key: str, expected: int, within: float) -> float:
    """Seconds until a request that gets `expected` on /me is begun (fails when one begun
    `within` seconds on gets another status)."""
    return seen_within(
        lambda: client.get("/api/v1/auth/me", key).status_code == expected,
        time.monotonic(), within, f"the key's {expected}",
    )  # fmt: skip


def test_cli_revocation_reaches_the_running_server(client: BoxClient, box: ServerProcess):
    key = key_of(client, "judy@example.com")
    key_id = client.get("/api/v1/auth/key", key).json()[0]["id"]
    assert f"revoked key {key_id}" in cli(box, "keys", "revoke", key_id)
    assert _first_status_after(client, key, 401, within=1.0) < 1.0


def test_cli_disable_reaches_the_running_server(client: BoxClient, box: ServerProcess):
    key = key_of(client, "mallory@example.com")
    cli(box, "users", "disable", "mallory@example.com")
    assert _first_status_after(client, key, 403, within=1.0) < 1.0
    assert error_code(client.get("/api/v1/auth/key", key), 403) == "account_disabled"
    cli(box, "users", "enable", "mallory@example.com")
    assert _first_status_after(client, key, 200, within=1.0) < 1.0


def test_cli_and_http_see_the_same_keys(client: BoxClient, box: ServerProcess):
    key = key_of(client, "oscar@example.com")
    client.create_key(key, "from-http")
    cli_key = cli(box, "keys", "create", "oscar@example.com", "--name", "from-cli").strip()
    assert KEY_RE.match(cli_key)
    client.keys_seen.append(cli_key)
    assert client.get("/api/v1/auth/me", cli_key).json()["email"] == "oscar@example.com"
    names = sorted(k["name"] for k in client.get("/api/v1/auth/key", cli_key).json())
    assert names[:2] == ["from-cli", "from-http"] and names[2].startswith("login-")


def test_no_code_or_key_in_clear_in_database_or_log(
    client: BoxClient, box: ServerProcess, smtp: RecordingSmtpServer
):
    # Its own sign-ins and keys first, so that it has secrets to look for when run alone too.
    for number in range(8):
        signed_in = client.sign_in(f"vault{number}@example.com")
    for name in ("vault-a", "vault-b"):
        assert client.create_key(signed_in["api_key"], name).status_code == 200
    codes = [m.code for m in smtp.messages]
    assert len(codes) >= 8 and len(client.keys_seen) >= 10
    assert_nothing_secret_stored(box, codes + client.keys_seen, marker="vault0@example.com")


def test_json_log_lines_parse_and_hold_no_code_or_key(
    box_factory: ServerFactory, smtp: RecordingSmtpServer
) -> None:
    """log.format = "json": every line of the log is one JSON object, the access lines among
    them, and the same scan as for the text form finds no code or key in it."""
    server = box_factory(email=smtp_sections(smtp), log={"format": "json"})
    client = BoxClient(server, smtp)
    try:
        signed_in = client.sign_in("jsonlog0@example.com")
        assert client.create_key(signed_in["api_key"], "json-a").status_code == 200
        client.get("/api/v1/auth/key", signed_in["api_key"])
        client.get("/api/v1/auth/key", "cl_" + "x" * 40)  # a wrong key: a 401 line
        codes = [m.code for m in smtp.messages_to("jsonlog0@example.com")]
        assert codes and len(client.keys_seen) >= 2
        assert_nothing_secret_stored(server, codes + client.keys_seen, "jsonlog0@example.com")
    finally:
        client.close()
    lines = [json.loads(line) for line in server.log_text().splitlines() if line.strip()]
    access = [line for line in lines if line["logger"] == "codelace_box.access"]
    assert {(line["route"], line["status"]) for line in access} >= {
        ("/api/v1/auth/otp/verify", 200),
        ("/api/v1/auth/key", 200),
        ("/api/v1/auth/key", 401),
    }
    assert all(line["request_id"].startswith("req_") for line in access)


def test_a_key_revoked_or_an_account_disabled_at_one_process_fails_at_the_other_at_once(
    box_factory: ServerFactory, smtp: RecordingSmtpServer
):
    """Two processes on one database: the other one's very next request sees the change, on
    every route of the key's (it cannot list, change or revoke keys any more either)."""
    first, second = (
        BoxClient(box_factory(data="revocation", email=smtp_sections(smtp)), smtp) for _ in "12"
    )
    email = "roaming-key@example.com"
    login = key_of(first, email)
    made = first.create_key(login, "ci").json()
    spare_id = first.create_key(login, "spare").json()["id"]
    assert first.call("DELETE", f"/api/v1/auth/key/{made['id']}", login).status_code == 204
    revoked = made["full_key"]
    for method, path in [
        ("GET", "/api/v1/auth/me"),
        ("GET", "/api/v1/auth/key"),
        ("PATCH", f"/api/v1/auth/key/{spare_id}"),
        ("DELETE", f"/api/v1/auth/key/{spare_id}"),
    ]:
        answer = second.call(method, path, revoked, json={"name": "x"})
        assert error_code(answer, 401) == "invalid_api_key", (method, path)
    cli(first.server, "users", "disable", email)
    assert error_code(second.get("/api/v1/auth/key", login), 403) == "account_disabled"
    cli(first.server, "users", "enable", email)
    names = sorted(k["name"] for k in second.get("/api/v1/auth/key", login).json())
    assert names[0].startswith("login-") and names[1:] == ["spare"]  # the keys came back
    first.close()
    second.close()


@pytest.mark.timeout(300)  # 1,000 durable writes: 90 s ran out on a machine busy beside it
def test_an_account_holds_a_bounded_number_of_active_keys(client: BoxClient):
    """A script with one key minted keys without end (each a durable write, a row every lookup
    and listing carries): past 1,000 active keys a new one is a 400 `too_many_keys` until one
    is revoked. Signing in still mints its key."""
    key = key_of(client, "many-keys@example.com")  # the first active key
    with httpx.Client(base_url=client.http.base_url, timeout=30, verify=TLS) as http:
        headers = {"authorization": f"Bearer {key}"}
        for _ in range(999):
            assert http.post("/api/v1/auth/key", json={}, headers=headers).status_code == 200
        refused = http.post("/api/v1/auth/key", json={"name": "one more"}, headers=headers)
        assert error_code(refused, 400) == "too_many_keys"
        said = refused.json()["error"]["message"]
        assert "1,000 API keys (not revoked, expired ones too)" in said
        last = http.get("/api/v1/auth/key", headers=headers).json()[-1]["id"]
        assert http.delete(f"/api/v1/auth/key/{last}", headers=headers).status_code == 204
        assert http.post("/api/v1/auth/key", json={}, headers=headers).status_code == 200
    assert key_of(client, "many-keys@example.com")  # a sign-in is not held to it
