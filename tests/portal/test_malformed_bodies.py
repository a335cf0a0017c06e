"""A portal call's body is held to the rule of every route (SPEC, HTTP API): a body that is no
JSON object is a 400 in the envelope, and the call does nothing; as its API twin does."""

from __future__ import annotations

import httpx
import pytest

from tests.portal.conftest import PortalBox
from tests.portal.test_key_limits import signed_in

NOT_AN_OBJECT = (b"garbage", b"[1, 2]", b'"text"', b"{")


@pytest.mark.parametrize("raw", NOT_AN_OBJECT)
def test_a_card_setup_with_a_body_that_is_no_json_object_is_a_400_and_starts_nothing(
    box: PortalBox, raw: bytes
) -> None:
    """POST /api/v1/stripe/setup takes no field, but a body sent must be a JSON object; the
    portal's setup is the same call and answered garbage with a Checkout Session."""
    client, headers = signed_in(box, f"setup-body-{NOT_AN_OBJECT.index(raw)}@portal.test")
    made = len(box.double.sessions)
    refused = client.post(
        "/portal/api/setup", content=raw, headers={**headers, "content-type": "application/json"}
    )
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["code"] == "invalid_json"
    assert len(box.double.sessions) == made, "no Checkout Session started"
    started = client.post("/portal/api/setup", headers=headers)  # no body at all, as the page
    assert started.status_code == 200, started.text
    assert len(box.double.sessions) == made + 1
    client.close()


def _refused_naming(answer: httpx.Response, field: str) -> None:
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == field, error
    assert field in error["message"], error


def test_a_field_no_portal_call_takes_is_a_400_naming_it(box: PortalBox) -> None:
    """A top-up (or sign-in, card setup, sign-out) with a field it does not take, a misspelt
    one or a setting it has not, was done without it (`{"amount_usd": 20, "currency": "eur"}`
    paid 20 USD); /api/v1's key and profile calls refuse such a field, naming it."""
    client, headers = signed_in(box, "unknown-fields@portal.test")
    made = len(box.double.sessions)
    topup = {"amount_usd": "20", "currency": "eur"}
    _refused_naming(client.post("/portal/api/topup", json=topup, headers=headers), "currency")
    setup = client.post("/portal/api/setup", json={"return_url": "x"}, headers=headers)
    _refused_naming(setup, "return_url")
    assert len(box.double.sessions) == made, "no Checkout Session started"
    out = client.post("/portal/api/signout", json={"everywhere": True}, headers=headers)
    _refused_naming(out, "everywhere")
    assert client.get("/portal/api/session").json()["signed_in"], "still signed in"
    page = {"origin": box.url}
    asked = {"email": "x@portal.test", "redirect": "/"}
    _refused_naming(client.post("/portal/api/signin/code", json=asked, headers=page), "redirect")
    assert box.smtp.messages_to("x@portal.test") == [], "no code mailed"
    verify = {"email": "x@portal.test", "code": "123456", "remember": True}
    _refused_naming(client.post("/portal/api/signin/verify", json=verify, headers=page), "remember")
    # what the page sends passes
    assert client.post("/portal/api/topup", json={"amount_usd": "20"}, headers=headers).is_success
    assert client.post("/portal/api/signout", headers=headers).is_success
    client.close()
