"""An upstream's error message holding what no database takes as text: half a UTF-16
surrogate pair (the JSON escape `\\ud800`, which Python's json reads as such), a NUL, and
around them an escape sequence and a direction override; as a refusal (400, before anything
was relayed) and as an error event inside a stream. The client gets its route's error, the
call costs nothing, its hold is released, and the usage row keeps the message, escaped."""

from __future__ import annotations

import pytest

from tests.fakes.hostile_upstream import SSE, Act, HostileUpstream, anthropic_event, sse
from tests.hostile.conftest import (
    KINDS,
    ROUTES,
    HostileBox,
    assert_ends_with_error,
    assert_free,
    body_of,
    stream_of,
)
from tests.support import sqlite_rows

pytestmark = pytest.mark.timeout(60)
FAILING = (
    "SELECT k.id, k.failure_reason FROM provider_key k JOIN provider p ON p.id = k.provider_id"
    " WHERE p.name = ? AND k.failing"
)
MESSAGE = "bad \\ud800 half \\udfff, a NUL \\u0000, \\u001b[2J and \\u202e"


def refusal(kind: str, status: int = 400) -> Act:
    if kind == "ha":
        body = '{"type": "error", "error": {"type": "invalid_request_error", "message": "%s"}}'
    else:
        body = '{"error": {"message": "%s", "type": "invalid_request_error"}}'
    return Act(status, [(body % MESSAGE).encode()])


def broken_stream(kind: str) -> Act:
    """A stream that starts, then carries the provider's own error event."""
    if kind == "ha":
        event = anthropic_event({"type": "error", "error": {"type": "api_error", "message": ""}})
    else:
        event = sse({"error": {"message": "", "type": "server_error"}})
    event = event.replace(b'"message": ""', f'"message": "{MESSAGE}"'.encode())
    return Act(200, [*stream_of(kind, end=False)[:2], event], SSE)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("route", ROUTES)
def test_an_upstream_error_no_database_takes_as_text_is_a_free_error_not_a_500(
    box: HostileBox, hostile: HostileUpstream, route: str, kind: str, stream: bool
) -> None:
    """The message was written to the usage row in the settlement as it came: UTF-8 cannot
    encode a lone surrogate, so the settlement failed, the client got a 500 (or a stream cut
    without its error event) and the hold stayed open."""
    email, key = box.new_user("10")
    start = box.balance_nanos(email)[0]
    hostile.push(refusal(kind))
    answer = box.post(key, route, kind, stream=stream)
    assert answer.status_code == 400, answer.text
    assert "half" in answer.text and "internal" not in answer.text
    assert_free(box, email, start, "upstream_400")
    assert "\\ud800 half \\udfff" in (box.last_row(email)["upstream_error"] or "")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("route", ROUTES)
def test_an_error_event_no_database_takes_as_text_ends_a_stream_in_its_dialect(
    box: HostileBox, hostile: HostileUpstream, route: str, kind: str
) -> None:
    email, key = box.new_user("10")
    hostile.push(broken_stream(kind))
    answer = box.post(key, route, kind, stream=True)
    assert answer.status_code == 200, answer.text
    assert_ends_with_error(route, answer.text, "half")
    row = box.last_row(email)
    assert row["status"] == "error" and "\\ud800" in (row["upstream_error"] or ""), row
    assert box.open_holds() == 0


@pytest.mark.parametrize("kind", KINDS)
def test_a_key_refused_with_such_a_message_leaves_the_rotation_and_the_call_is_answered(
    box: HostileBox, hostile: HostileUpstream, kind: str
) -> None:
    """The refusal's words are kept as the key's failure reason, which was written as they
    came: the write failed, and with it the call (a 500) instead of its retry on the other
    key."""
    _, key = box.new_user("10")
    refused = f"sk-{kind}-key-0001"
    hostile.default = body_of(kind)
    hostile.key_acts[refused] = refusal(kind, 401)
    hostile.probe_status[refused] = 401
    try:
        for _ in range(3):
            answer = box.post(key, "chat", kind, stream=False)
            assert answer.status_code == 200, answer.text
        assert [seen.key for seen in hostile.seen].count(refused) <= 1
        failing = sqlite_rows(box.db_path, FAILING, (kind,))
        assert [reason for _, reason in failing if "\\ud800 half" in reason], failing
    finally:
        hostile.key_acts.clear()
        hostile.probe_status.clear()
        for key_id, _ in sqlite_rows(box.db_path, FAILING, (kind,)):
            box.cli("providers", "key-enable", kind, str(key_id))
