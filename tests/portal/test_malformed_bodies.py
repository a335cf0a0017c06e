"""A portal call's body is held to the rule of every route (SPEC, HTTP API): a body that is no
JSON object is a 400 in the envelope, and the call does nothing; as its API twin does."""

from __future__ import annotations

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
