"""Bodies any site can make a browser send without asking (an HTML form's: urlencoded,
multipart, text/plain; a fetch's or a beacon's with no type at all) change nothing in the
portal, even when the browser says nothing of where the request comes from (no Origin, no
Sec-Fetch-Site: older browsers, and a page that asks for no referrer). The sign-in endpoints
have no CSRF token to lean on: a form-made verify would sign the visitor's browser into the
attacker's account (login CSRF)."""

from __future__ import annotations

import json

import httpx

from tests.portal.conftest import PortalBox

FORM_TYPES = (
    None,  # no Content-Type at all: a no-cors fetch or sendBeacon of a Blob without a type
    "text/plain",
    "text/plain;charset=UTF-8",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
)


def typed(kind: str | None) -> dict[str, str]:
    return {} if kind is None else {"content-type": kind}


def attackers_code(box: PortalBox, client: httpx.Client, email: str) -> str:
    """A live code for the attacker's own address, asked for as the page does."""
    before = len(box.smtp.messages_to(email))
    asked = client.post(
        "/portal/api/signin/code", json={"email": email}, headers={"origin": box.url}
    )
    assert asked.status_code == 200, asked.text
    return box.smtp.wait_for(email, count=before + 1).code


def test_a_form_made_verify_signs_no_browser_in(box: PortalBox) -> None:
    email = "login-csrf-form@portal.test"
    with box.http() as attacker:
        code = attackers_code(box, attacker, email)
    body = json.dumps({"email": email, "code": code}).encode()
    for kind in FORM_TYPES:
        with box.http() as victim:
            answer = victim.post("/portal/api/signin/verify", content=body, headers=typed(kind))
            assert answer.status_code == 403, (kind, answer.text)
            assert answer.json()["error"]["code"] == "csrf_failed"
            assert "set-cookie" not in answer.headers, kind
    with box.http() as client:  # the code was not spent: a JSON call (no Origin) still works
        answer = client.post("/portal/api/signin/verify", json={"email": email, "code": code})
        assert answer.status_code == 200, answer.text
        assert "codelace_session=" in answer.headers["set-cookie"]


def test_a_form_made_code_request_mails_nothing(box: PortalBox) -> None:
    email = "code-csrf-form@portal.test"
    body = json.dumps({"email": email}).encode()
    with box.http() as client:
        for kind in FORM_TYPES:
            answer = client.post("/portal/api/signin/code", content=body, headers=typed(kind))
            assert answer.status_code == 403, (kind, answer.text)
    assert box.smtp.messages_to(email) == []


def test_a_form_made_change_is_refused_even_with_the_token(box: PortalBox) -> None:
    """Belt and braces on the calls that do carry the token: a form body is no page's call."""
    with box.http() as client:
        csrf = str(box.sign_in_http(client, "form-change@portal.test")["csrf_token"])
        answer = client.post(
            "/portal/api/keys",
            content=b'{"name": "formed"}',
            headers={"content-type": "text/plain", "x-csrf-token": csrf},
        )
        assert answer.status_code == 403, answer.text
        made = client.post(
            "/portal/api/keys", json={"name": "json"}, headers={"x-csrf-token": csrf}
        )
        assert made.status_code == 200, made.text
        bare = client.post("/portal/api/setup", headers={"x-csrf-token": csrf})  # no body at all
        assert bare.status_code == 200, bare.text
    assert box.query("SELECT COUNT(*) FROM api_key WHERE name = 'formed'") == [(0,)]
