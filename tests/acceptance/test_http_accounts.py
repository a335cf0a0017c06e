"""docs/http-api.md "Authentication", from the outside: sign-in codes by mail, the profile,
API keys."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest

from tests.acceptance.conftest import ISO_Z, Box, assert_envelope
from tests.support import is_uuid4

pytestmark = pytest.mark.timeout(60)
FULL_KEY = re.compile(r"^cl_[0-9A-Za-z]{32,}$")


def test_a_code_request_answers_the_same_for_known_unknown_and_outside_addresses(
    box: Box,
) -> None:
    known, _ = box.new_user()
    with box.http() as http:
        for email in (known, "newcomer@acc.test", "stranger@elsewhere.test"):
            response = http.post("/api/v1/auth/otp/request", json={"email": email})
            assert response.status_code == 200, response.text
            assert response.json() == {"email": email, "expires_in_sec": 600}
            assert type(response.json()["expires_in_sec"]) is int


def test_the_first_sign_in_creates_the_account_and_mints_a_login_key(box: Box) -> None:
    email = "first-time@acc.test"
    with box.http() as http:
        day_before = datetime.now(UTC).strftime("%Y-%m-%d")
        body = box.sign_in(http, email)
        day_after = datetime.now(UTC).strftime("%Y-%m-%d")  # the key is named for one of them
        assert set(body) >= {"user_id", "api_key", "email", "credit_balance_usd"}
        assert is_uuid4(body["user_id"]) and body["email"] == email
        assert FULL_KEY.match(body["api_key"])
        balance = body["credit_balance_usd"]
        assert isinstance(balance, int | float) and not isinstance(balance, bool)
        keys = http.get("/api/v1/auth/key", headers={"authorization": f"Bearer {body['api_key']}"})
    assert keys.status_code == 200
    [key] = keys.json()
    assert key["name"] in {"login-" + day_before, "login-" + day_after}
    assert key["key_prefix"] == body["api_key"][:7]


def test_a_code_works_once(box: Box) -> None:
    email = "once@acc.test"
    with box.http() as http:
        http.post("/api/v1/auth/otp/request", json={"email": email})
        code = box.smtp.wait_for(email).code
        first = http.post("/api/v1/auth/otp/verify", json={"email": email, "code": code})
        second = http.post("/api/v1/auth/otp/verify", json={"email": email, "code": code})
    assert first.status_code == 200
    assert_envelope(second, 400)


def test_five_wrong_tries_end_a_code(box: Box) -> None:
    email = "clumsy@acc.test"
    with box.http() as http:
        http.post("/api/v1/auth/otp/request", json={"email": email})
        code = box.smtp.wait_for(email).code
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        for _ in range(5):
            miss = http.post("/api/v1/auth/otp/verify", json={"email": email, "code": wrong})
            assert_envelope(miss, 400)
        late = http.post("/api/v1/auth/otp/verify", json={"email": email, "code": code})
    assert_envelope(late, 400)


def test_signing_up_from_a_domain_the_policy_refuses_is_403(box: Box) -> None:
    email = "outsider@elsewhere.test"
    with box.http() as http:
        http.post("/api/v1/auth/otp/request", json={"email": email})
        code = box.smtp.wait_for(email).code
        response = http.post("/api/v1/auth/otp/verify", json={"email": email, "code": code})
    assert_envelope(response, 403, "signup_not_allowed")
    listed = json.loads(box.cli("users", "list", "--json"))
    assert email not in {user["email"] for user in listed}, "a refused sign-up made an account"


def test_a_disabled_account_cannot_sign_in(box: Box) -> None:
    email, _ = box.new_user()
    box.cli("users", "disable", email)
    with box.http() as http:
        http.post("/api/v1/auth/otp/request", json={"email": email})
        code = box.smtp.wait_for(email).code
        response = http.post("/api/v1/auth/otp/verify", json={"email": email, "code": code})
    assert_envelope(response, 403, "account_disabled")


def test_the_profile_reads_and_changes_its_display_name(box: Box) -> None:
    email, key = box.new_user()
    with box.http(key) as http:
        me = http.get("/api/v1/auth/me").json()
        assert set(me) >= {"id", "email", "display_name"}
        assert is_uuid4(me["id"]) and me["email"] == email
        assert me["display_name"] is None or isinstance(me["display_name"], str)
        changed = http.patch("/api/v1/auth/me", json={"display_name": "Ada L."})
        assert changed.status_code == 200 and changed.json()["display_name"] == "Ada L."
        assert http.get("/api/v1/auth/me").json()["display_name"] == "Ada L."
        assert_envelope(http.patch("/api/v1/auth/me", json={"display_name": 7}), 400)


def test_a_profile_patch_leaves_an_absent_field_and_null_clears_it(box: Box) -> None:
    """The SPEC's PATCH rule (absent: unchanged; null: cleared) on the profile too."""
    _, key = box.new_user()
    with box.http(key) as http:
        http.patch("/api/v1/auth/me", json={"display_name": "Grace H."})
        unchanged = http.patch("/api/v1/auth/me", json={})
        assert unchanged.status_code == 200, unchanged.text
        assert unchanged.json()["display_name"] == "Grace H."
        cleared = http.patch("/api/v1/auth/me", json={"display_name": None})
        assert cleared.status_code == 200, cleared.text
        assert not http.get("/api/v1/auth/me").json()["display_name"]
        unknown = http.patch("/api/v1/auth/me", json={"display_nam": "typo"})
        assert_envelope(unknown, 400)
        assert unknown.json()["error"]["param"] == "display_nam"


def test_keys_are_listed_created_and_revoked(box: Box) -> None:
    _, key = box.new_user()
    with box.http(key) as http:
        made = http.post("/api/v1/auth/key", json={"name": "laptop"})
        assert made.status_code == 200, made.text
        new = made.json()
        assert set(new) >= {"id", "key_prefix", "name", "full_key"}
        assert is_uuid4(new["id"]) and new["name"] == "laptop"
        assert FULL_KEY.match(new["full_key"]) and new["key_prefix"] == new["full_key"][:7]
        listed = http.get("/api/v1/auth/key").json()
        assert {k["id"] for k in listed} >= {new["id"]}
        for item in listed:
            assert set(item) >= {"id", "key_prefix", "name", "created_at", "last_used_at"}
            assert "full_key" not in item
            assert ISO_Z.match(item["created_at"])
            assert item["last_used_at"] is None or ISO_Z.match(item["last_used_at"])
        with box.http(new["full_key"]) as as_new:
            assert as_new.get("/api/v1/customer/balance").status_code == 200
            gone = http.delete(f"/api/v1/auth/key/{new['id']}")
            assert gone.status_code == 204 and gone.content == b""
            assert gone.headers.get("x-request-id")
            assert_envelope(as_new.get("/api/v1/customer/balance"), 401, "invalid_api_key")
        assert new["id"] not in {k["id"] for k in http.get("/api/v1/auth/key").json()}
        assert_envelope(http.delete(f"/api/v1/auth/key/{new['id']}"), 404)


def test_a_key_id_that_is_not_a_key_uuid_is_a_404_in_the_envelope(box: Box) -> None:
    _, key = box.new_user()
    with box.http(key) as http:
        own = http.get("/api/v1/auth/key").json()[0]["id"]
        for wrong in ("1", "0", "-1", "9" * 30, "abc", own[:8], own + "x", "%00", "é"):
            assert_envelope(http.delete(f"/api/v1/auth/key/{wrong}"), 404, "key_not_found")
        assert http.get("/api/v1/auth/me").status_code == 200


def test_a_key_can_be_created_without_a_name_or_a_body(box: Box) -> None:
    _, key = box.new_user()
    with box.http(key) as http:
        for response in (http.post("/api/v1/auth/key", json={}), http.post("/api/v1/auth/key")):
            assert response.status_code == 200, response.text
            assert FULL_KEY.match(response.json()["full_key"])


def test_nobody_revokes_someone_elses_key(box: Box) -> None:
    _, mine = box.new_user()
    _, theirs = box.new_user()
    with box.http(theirs) as http:
        their_id = http.get("/api/v1/auth/key").json()[0]["id"]
    with box.http(mine) as http:
        assert_envelope(http.delete(f"/api/v1/auth/key/{their_id}"), 404)
    with box.http(theirs) as http:
        assert http.get("/api/v1/auth/me").status_code == 200
