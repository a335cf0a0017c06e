"""An upstream's error *type or code* (not its message) holding what no database takes as
text or no JSON answer can carry: half a UTF-16 surrogate pair (the escape `\\ud800`), a NUL,
a long run of letters. An Anthropic stream's error type was the settlement's error_code and
the client's error code as it came: a 500 on every route, no usage row, the hold left open
(on PostgreSQL a NUL or more than 255 characters too)."""

from __future__ import annotations

import pytest

from tests.fakes.hostile_upstream import SSE, Act, HostileUpstream, anthropic_event, sse
from tests.hostile.conftest import KINDS, ROUTES, HostileBox, stream_of

pytestmark = pytest.mark.timeout(60)
ODD = ["bad\\ud800type", "nul\\u0000type", "x" * 300]


def refusal(kind: str, odd: str) -> Act:
    if kind == "ha":
        body = '{"type": "error", "error": {"type": "%s", "message": "no"}}'
    else:
        body = '{"error": {"message": "no", "type": "%s", "code": "%s", "param": "%s"}}'
        body = body.replace("%s", odd, 3).replace("%s", odd)
        return Act(400, [body.encode()])
    return Act(400, [(body % odd).encode()])


def broken_stream(kind: str, odd: str, started: bool) -> Act:
    if kind == "ha":
        event = anthropic_event({"type": "error", "error": {"type": "TYPE", "message": "no"}})
    else:
        event = sse({"error": {"message": "no", "type": "TYPE", "code": "TYPE"}})
    event = event.replace(b'"TYPE"', f'"{odd}"'.encode())
    head = stream_of(kind, end=False)[:2] if started else []
    return Act(200, [*head, event], SSE)


@pytest.mark.parametrize("odd", ODD, ids=["surrogate", "nul", "long"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("route", ROUTES)
def test_an_odd_error_type_in_a_refusal_is_a_free_error_not_a_500(
    box: HostileBox, hostile: HostileUpstream, route: str, kind: str, odd: str
) -> None:
    email, key = box.new_user("10")
    hostile.push(refusal(kind, odd))
    answer = box.post(key, route, kind, stream=False)
    assert answer.status_code == 400, answer.text
    assert box.last_row(email)["status"] == "error"
    assert box.balance_nanos(email)[1] == 0


@pytest.mark.parametrize("started", [False, True], ids=["before-content", "mid-stream"])
@pytest.mark.parametrize("odd", ODD, ids=["surrogate", "nul", "long"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("route", ROUTES)
def test_an_odd_error_type_in_a_stream_ends_it_with_an_error_not_a_500(
    box: HostileBox, hostile: HostileUpstream, route: str, kind: str, odd: str, started: bool
) -> None:
    email, key = box.new_user("10")
    hostile.default = broken_stream(kind, odd, started)  # a retry on another key meets it too
    answer = box.post(key, route, kind, stream=True)
    assert answer.status_code in (200, 502, 503), answer.text
    assert "internal" not in answer.text, answer.text
    row = box.last_row(email)
    code = str(row["error_code"])  # PostgreSQL takes no NUL, nor past 255 characters here
    assert row["status"] == "error" and code.isascii() and code.isprintable(), row
    assert len(code) <= 64 and box.balance_nanos(email)[1] == 0, row
