"""Keys that may not manage keys (`can_manage_keys: false`): a capped key handed to a tool
calls models and reads its account, but every write to the account's keys (and its profile)
is a 403 `key_management_not_allowed` that changes nothing; a managing key flips the flag and
the next request sees it, on whichever of two workers it lands."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.fakes.openai_upstream import FakeOpenAI
from tests.gateway.conftest import MODEL, Box, BoxFactory

pytestmark = pytest.mark.timeout(120)
KEYS = "/api/v1/auth/key"
REFUSED = "key_management_not_allowed"


@pytest.fixture(scope="module")
def box(box_factory: BoxFactory) -> Box:
    return box_factory()


def scoped_key(box: Box, login: str, **fields: Any) -> dict[str, Any]:
    """A key made through the API by a managing key, with can_manage_keys false."""
    made = box.http(login).post(KEYS, json={"name": "tool", "can_manage_keys": False, **fields})
    assert made.status_code == 200, made.text
    body: dict[str, Any] = made.json()
    assert body["can_manage_keys"] is False
    return body


def assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("permission_error", REFUSED), error
    assert "cl_" not in error["message"]


def stored_keys(box: Box, email: str) -> list[tuple[Any, ...]]:
    return box.query(
        "SELECT k.uuid, k.name, k.limit_nanos, k.limit_reset, k.expires_at, k.allowed_models, "
        'k.can_manage_keys, k.revoked_at FROM api_key k JOIN "user" u ON u.id = k.user_id '
        "WHERE u.email = ? ORDER BY k.id",
        email,
    )


def test_a_capped_tool_key_cannot_lift_its_cap_mint_revoke_or_rename(box: Box) -> None:
    email, login = box.new_user("5")
    login_id = box.http(login).get(KEYS).json()[0]["id"]
    tool = scoped_key(box, login, limit_usd=1, limit_reset="daily", allowed_models=[MODEL])
    own = f"{KEYS}/{tool['id']}"
    before = stored_keys(box, email)
    with box.http(tool["full_key"]) as client:
        assert_refused(client.patch(own, json={"limit_usd": None}))
        assert_refused(client.patch(own, json={"limit_usd": 1000, "allowed_models": None}))
        assert_refused(client.patch(own, json={"can_manage_keys": True}))
        assert_refused(client.patch(own, json={"name": "renamed"}))
        assert_refused(client.patch(f"{KEYS}/{login_id}", json={"name": "renamed"}))
        assert_refused(client.post(KEYS, json={"name": "uncapped"}))
        assert_refused(client.post(KEYS))  # no body either
        assert_refused(client.post(KEYS, json={"bogus": 1}))  # refused before any 400
        assert_refused(client.delete(f"{KEYS}/{login_id}"))
        assert_refused(client.delete(own))
        assert_refused(client.patch("/api/v1/auth/me", json={"display_name": "tool"}))
    assert stored_keys(box, email) == before
    assert box.query('SELECT display_name FROM "user" WHERE email = ?', email) == [("",)]


def test_a_tool_key_still_calls_models_and_reads_its_account(box: Box, fake: FakeOpenAI) -> None:
    _, login = box.new_user("5")
    tool = scoped_key(box, login, limit_usd=1)
    answer = box.sdk(tool["full_key"]).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=20
    )
    assert answer.choices[0].message.content
    with box.http(tool["full_key"]) as client:
        for path in ("/api/v1/auth/me", "/api/v1/customer/balance", "/api/v1/customer/usage",
                     "/api/v1/customer/payment", KEYS):  # fmt: skip
            assert client.get(path).status_code == 200, path
        assert client.get("/api/v1/customer/usage").json()["request_count"] == 1
        listed = {k["id"]: k for k in client.get(KEYS).json()}
        assert listed[tool["id"]]["can_manage_keys"] is False
        assert listed[tool["id"]]["spent_usd"] > 0
        # Stripe is not a key write: the box without Stripe answers its own 503, not the 403
        checkout = client.post("/api/v1/stripe/checkout", json={"amount_usd": 20})
        assert checkout.status_code == 503, checkout.text


def test_new_keys_manage_by_default_and_the_flag_is_shown(box: Box) -> None:
    _, login = box.new_user("1")
    plain = box.http(login).post(KEYS, json={"name": "plain"}).json()
    assert plain["can_manage_keys"] is True
    assert all(k["can_manage_keys"] is True for k in box.http(login).get(KEYS).json())
    with box.http(plain["full_key"]) as client:  # a key made without the field can manage
        assert client.patch(f"{KEYS}/{plain['id']}", json={"name": "p2"}).status_code == 200


def test_a_managing_key_flips_the_flag_and_the_next_request_sees_it(box: Box) -> None:
    _, login = box.new_user("1")
    tool = scoped_key(box, login)
    own = f"{KEYS}/{tool['id']}"
    with box.http(login) as manager, box.http(tool["full_key"]) as client:
        granted = manager.patch(own, json={"can_manage_keys": True})
        assert granted.status_code == 200 and granted.json()["can_manage_keys"] is True
        assert client.patch(own, json={"name": "now-i-can"}).status_code == 200
        revoked = manager.patch(own, json={"can_manage_keys": False, "name": "tool"})
        assert revoked.json()["can_manage_keys"] is False
        assert_refused(client.patch(own, json={"name": "not-any-more"}))
        assert manager.get(KEYS).json()[1]["name"] == "tool"


def test_a_key_cannot_change_its_own_flag(box: Box) -> None:
    _, login = box.new_user("1")
    login_id = box.http(login).get(KEYS).json()[0]["id"]
    with box.http(login) as client:
        assert_refused(client.patch(f"{KEYS}/{login_id}", json={"can_manage_keys": False}))
        same = client.patch(f"{KEYS}/{login_id}", json={"can_manage_keys": True, "name": "me"})
        assert same.status_code == 200, same.text  # the same value is no change
        assert client.get(KEYS).json()[0]["can_manage_keys"] is True


@pytest.fixture(scope="module")
def two_workers(box_factory: BoxFactory) -> Box:
    return box_factory("--workers", "2")


def test_the_flag_holds_at_once_on_two_workers(two_workers: Box) -> None:
    box = two_workers
    _, login = box.new_user("1")
    tool = scoped_key(box, login)
    own = f"{KEYS}/{tool['id']}"

    def rename(number: int) -> int:  # a connection of its own: both workers get some
        with box.http(tool["full_key"]) as client:
            return client.patch(own, json={"name": f"n{number}"}).status_code

    for round_ in range(3):
        with box.http(login) as manager:
            assert manager.patch(own, json={"can_manage_keys": True}).status_code == 200
        assert [rename(n) for n in range(6)] == [200] * 6, round_
        with box.http(login) as manager:
            assert manager.patch(own, json={"can_manage_keys": False}).status_code == 200
        assert [rename(n) for n in range(6)] == [403] * 6, round_


def test_the_cli_sets_shows_and_flips_the_flag_and_audits_it(box: Box) -> None:
    email, _ = box.new_user("1")
    tool_key = box.cli("keys", "create", email, "--name", "tool", "--limit-usd", "2",
                       "--no-manage-keys").strip()  # fmt: skip
    listed = json.loads(box.cli("keys", "list", email, "--json"))
    tool = next(k for k in listed if k["name"] == "tool")
    assert [k["can_manage_keys"] for k in listed] == [True, False]
    header, *rows = box.cli("keys", "list", email).splitlines()
    assert header.split()[-2:] == ["CAN_MANAGE_KEYS", "EXPIRES_AT"]
    assert [row.split()[-2] for row in rows] == ["True", "False"], rows
    assert_refused(box.http(tool_key).post(KEYS, json={"name": "uncapped"}))

    shown = json.loads(box.cli("keys", "update", tool["id"][:8], "--manage-keys", "--json"))
    assert shown["can_manage_keys"] is True and shown["limit_usd"] == 2
    assert box.http(tool_key).patch(f"{KEYS}/{tool['id']}", json={"name": "t"}).status_code == 200
    box.cli("keys", "update", tool["id"], "--no-manage-keys")
    assert_refused(box.http(tool_key).patch(f"{KEYS}/{tool['id']}", json={"name": "t2"}))
    audit = [e for e in json.loads(box.cli("audit", "--json")) if e["target"] == tool["id"]]
    flags = [(e["command"], (e["before"] or {}).get("can_manage_keys"),
              e["after"]["can_manage_keys"]) for e in audit]  # fmt: skip
    assert flags == [("keys create", None, False), ("keys update", False, True),
                     ("keys update", True, False)]  # fmt: skip
