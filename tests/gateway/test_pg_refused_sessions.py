"""A box on PostgreSQL whose server is up but refuses it a new session (every slot taken:
`too many clients`; a password rotated; a database closed to connections): the request is a
503, and the server log says PostgreSQL's reason, so the operator can tell it from an outage."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.gateway.conftest import Box
from tests.pg_cluster import let_sessions_in
from tests.support import TLS

pytestmark = pytest.mark.timeout(90)


def test_a_session_the_server_refuses_is_logged_with_its_reason(pg_box: Box, pg_url: str) -> None:
    _, key = pg_box.new_user("10")
    keys = f"{pg_box.url}/api/v1/auth/key"
    headers = {"authorization": f"Bearer {key}"}
    assert httpx.get(keys, headers=headers, timeout=30, verify=TLS).status_code == 200
    let_sessions_in(pg_url, False)
    try:
        time.sleep(0.3)  # the box's sessions seen ended: the next call must open a new one
        refused = httpx.get(keys, headers=headers, timeout=30, verify=TLS)
    finally:
        let_sessions_in(pg_url, True)
    assert refused.status_code == 503, refused.text
    assert refused.json()["error"]["code"] == "database_unavailable"
    request_id = refused.headers["x-request-id"]
    said = pg_box.server.wait_for_log(rf"request {request_id}: the database was unavailable .*")
    assert "is not currently accepting connections" in said[0], said
    assert httpx.get(keys, headers=headers, timeout=30, verify=TLS).status_code == 200
