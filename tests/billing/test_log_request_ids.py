"""Lines the webhook logs while applying an event name its request, on either engine: on
PostgreSQL the event is applied on a database thread, which must see the request's id too."""

from __future__ import annotations

import json

import pytest

from tests.billing.conftest import BillingBox, BoxFactory

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def json_box(billing_box_factory: BoxFactory) -> BillingBox:
    return billing_box_factory(log={"format": "json"})


def test_a_line_logged_while_an_event_is_applied_carries_the_request_id(
    json_box: BillingBox,
) -> None:
    session_id = json_box.foreign_paid_session()
    response = json_box.deliver(json_box.double.complete(session_id))
    assert response.json()["result"] == "unknown_session"
    request_id = response.headers["x-request-id"]
    (raw,) = json_box.server.wait_for_log(rf'.*"message":"paid Checkout Session {session_id}.*')
    line = json.loads(raw)
    assert line["logger"] == "codelace_box.billing.webhooks"
    assert line.get("request_id") == request_id, line
