"""A stream that fails upstream after its client left (the box reads on to meter it) is an
upstream failure like any other: it was logged, but not counted in
codelace_upstream_errors_total, so the dashboards that watch a provider missed it."""

from __future__ import annotations

import pytest

from tests.gateway.conftest import BoxFactory
from tests.observability.test_metrics_and_logs import scrape, total
from tests.observability.test_secrets_in_messages import leave_after_the_first_chunk

pytestmark = pytest.mark.timeout(60)
OVERLOADED = {"error": {"message": "the upstream is overloaded", "type": "server_error"}}


def test_an_upstream_failure_after_the_client_left_is_counted(box_factory: BoxFactory) -> None:
    box = box_factory(gateway={"max_retries": 0})
    _, key = box.new_user("10")
    request_id = leave_after_the_first_chunk(box, key, OVERLOADED)
    box.settled_row(request_id)
    box.server.wait_for_log(r"ended after its client left")
    errors = total(scrape(box), "codelace_upstream_errors_total", provider="fake")
    assert errors == 1, "the failure is counted though no client heard of it"
