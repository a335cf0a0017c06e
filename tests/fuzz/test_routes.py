"""Every route that is not an inference dialect (sign-in, keys, profile, Stripe, the portal,
the public and customer reads), fed what a fuzzer sends: JSON edge cases as whole bodies, each
field of each body replaced by a value of another type or an odd string, odd query strings,
methods and path parameters. Each answer is a success or a 4xx in the OpenAI envelope with a
request id, and a refused write leaves keys, payments, holds and the ledger as they were."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fuzz.conftest import CHAT_MODEL, FuzzBox, error_problems, ledger_state
from tests.fuzz.test_bodies import HOSTILE, JSON_TYPE

pytestmark = pytest.mark.timeout(120)
# Whole bodies: what no JSON parser but Python's own takes, or no object at all
NOT_AN_OBJECT = [
    b"", b"null", b"1", b"-0", b'"s"', b"[]", b"[{}]", b"true", b"1e400", b"NaN",
    b'{"a": NaN}', b'{"a": -Infinity}', b'{"a": 1e400}', b'{"a": ' + b"9" * 5000 + b"}",
    b'{"a": "\\ud800"}', b"\xff\xfe{\x00}\x00", b'{"\xff": 1}', b"{} {}", b"{}x", b"\x00",
    b'{"a":' * 300 + b"1" + b"}" * 300,
]  # fmt: skip
# Strings a field may choke on: control and format characters, other scripts' digits, dates
# and amounts as text, long ones
ODD_TEXT = ["", " ", "\x00", "a\r\nb", "\u202e", "é" * 200, "x" * 5000, "NaN", "1e999", "-0",
            "\uff11\uff10", "\u0663", "2026-02-30", "+275760-09-13T00:00:00Z",
            "9999-12-31T23:59:59-14:00",
            "DAILY", CHAT_MODEL.upper()]  # fmt: skip
KEY_FIELDS = {"name": "n", "limit_usd": 5, "limit_reset": "daily",
              "expires_at": "2030-01-01T00:00:00Z", "allowed_models": [CHAT_MODEL]}  # fmt: skip


@pytest.fixture(scope="module")
def account(box: FuzzBox) -> Iterator[tuple[httpx.Client, httpx.Client, str]]:
    """A funded account's key client, its portal client, and the id of one of its keys."""
    email, key = box.new_user("5")
    portal = box.portal(email)
    with box.http(key) as http:
        key_id = http.get("/api/v1/auth/key").json()[0]["id"]
        yield http, portal, key_id
    portal.close()


def writes(portal: bool, key_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, a body that succeeds) of every JSON-taking route a client of the kind
    (portal or key) calls."""
    if portal:
        return [("POST", "/portal/api/keys", KEY_FIELDS),
                ("PATCH", f"/portal/api/keys/{key_id}", KEY_FIELDS),
                ("POST", "/portal/api/topup", {"amount_usd": "20"}),
                ("POST", "/portal/api/signin/code", {"email": "a@fuzz.test"}),
                ("POST", "/portal/api/signin/verify", {"email": "b@fuzz.test", "code": "1"}),
                ]  # fmt: skip
    return [("POST", "/api/v1/auth/key", KEY_FIELDS),
            ("PATCH", f"/api/v1/auth/key/{key_id}", KEY_FIELDS),
            ("PATCH", "/api/v1/auth/me", {"display_name": "d"}),
            ("POST", "/api/v1/stripe/checkout", {"amount_usd": 20}),
            ("POST", "/api/v1/auth/otp/request", {"email": "a@fuzz.test"}),
            ("POST", "/api/v1/auth/otp/verify", {"email": "a@fuzz.test", "code": "1"})]  # fmt: skip


def checked(box: FuzzBox, client: httpx.Client, method: str, path: str, body: bytes) -> list[str]:
    """The contract's faults in the answer to one write; a refused one changed nothing."""
    before = ledger_state(box)
    answer = client.request(method, path, content=body, headers=JSON_TYPE)
    found = error_problems(answer, path, box.secrets())
    if answer.status_code >= 400 and ledger_state(box) != before:
        found.append("a refused write changed the database")
    return [f"{method} {path} {body[:60]!r}: {problem}" for problem in found]


@pytest.mark.parametrize("portal", [False, True], ids=["key", "portal"])
def test_no_value_in_any_field_of_any_write_makes_a_5xx_or_half_a_write(
    box: FuzzBox, account: tuple[httpx.Client, httpx.Client, str], portal: bool
) -> None:
    http, session, key_id = account
    client = session if portal else http
    problems = []
    for method, path, good in writes(portal, key_id):
        for raw in NOT_AN_OBJECT:
            problems += checked(box, client, method, path, raw)
        for field in good:
            for value in [*HOSTILE, *ODD_TEXT]:
                body = json.dumps({**good, field: value}).encode()
                problems += checked(box, client, method, path, body)
    assert not problems, "\n".join(problems)


READS = ["/healthz", "/v1/models", f"/v1/models/{CHAT_MODEL}", "/api/v1/public/pricing",
         "/api/v1/auth/me", "/api/v1/auth/key", "/api/v1/customer/balance",
         "/api/v1/customer/usage", "/api/v1/customer/payment", "/metrics", "/",
         "/billing/success", "/billing/cancel", "/portal/api/session", "/portal/api/overview",
         "/portal/api/keys", "/portal/api/usage", "/portal/api/payments"]  # fmt: skip
QUERIES = ["limit=-1", "limit=1e9", "limit=abc", "limit=", "limit=0", "limit=%00",
           "limit=99999999999999999999", "limit=1&limit=x", "limit=%EF%BC%91", "limit=+5",
           "session_id=%ED%A0%80", "%ff=%fe", "a=" + "x" * 4000, "%%%"]  # fmt: skip


@pytest.mark.parametrize("portal", [False, True], ids=["key", "portal"])
def test_odd_queries_methods_and_paths_on_every_read_are_answered_in_the_envelope(
    box: FuzzBox, account: tuple[httpx.Client, httpx.Client, str], portal: bool
) -> None:
    http, session, _ = account
    client = session if portal else http
    problems = []
    for path in READS:
        targets = [f"{path}?{query}" for query in QUERIES]
        targets += [path + "/", "/" + path, path.replace("v1", "v%31"), path.upper()]
        for target in targets:
            for method in ("GET", "HEAD", "PUT", "DELETE"):
                answer = client.request(method, target)
                problems += [f"{method} {target[:80]}: {problem}" for problem in
                             error_problems(answer, target, box.secrets())]  # fmt: skip
    assert not problems, "\n".join(problems)


NO_KEY = "00000000-0000-0000-0000-000000000000"
PARAMS = ["x", "%00", "%ff", "%ED%A0%80", "..%2f..", "a" * 3000, NO_KEY, "%20", "{}",
          f"urn:uuid:{NO_KEY}"]  # fmt: skip


def test_odd_path_parameters_are_4xx_and_touch_nothing(
    box: FuzzBox, account: tuple[httpx.Client, httpx.Client, str]
) -> None:
    http, session, key_id = account
    problems = []
    for param in [*PARAMS, key_id + "x", " " + key_id, key_id.replace("-", "")]:
        for client, base in ((http, "/api/v1/auth/key/"), (session, "/portal/api/keys/")):
            for method in ("DELETE", "PATCH"):
                problems += checked(box, client, method, base + param, b'{"name": "y"}')
        answer = http.get(f"/v1/models/{param}")
        problems += error_problems(answer, "/v1/models/", box.secrets())
    assert not problems, "\n".join(problems)
    assert http.get("/api/v1/auth/me").status_code == 200  # the key still works
