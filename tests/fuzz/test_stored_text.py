"""Text a client sends that the database must hold or look up: a NUL (`\\u0000`, which JSON
allows in any string) is text to SQLite but no text to PostgreSQL, which refuses it in a
text field or a parameter. Every string of every inference body, and the return page's
session id, carrying one: a success or a 4xx on either engine, every call settled."""

from __future__ import annotations

import json

import pytest

from tests.fuzz.bodies import SEEDS, places, replaced
from tests.fuzz.conftest import CLAUDE_MODEL, FuzzBox, error_problems
from tests.fuzz.test_bodies import JSON_TYPE

pytestmark = pytest.mark.timeout(120)
NUL = "a\x00b"


def test_an_upstream_refusal_quoting_a_nul_is_relayed_and_settled(box: FuzzBox) -> None:
    """Anthropic names a field it does not know in its 400 (`a\\x00b: Extra inputs are not
    permitted`); the box keeps the upstream's message on the usage row, and on PostgreSQL
    that write failed: the settlement rolled back, a 500, and the call's hold stayed open."""
    body = {"model": CLAUDE_MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}],
            NUL: 1}  # fmt: skip
    with box.http(box.key) as http:
        answer = http.post("/v1/messages", json=body, headers={"x-api-key": box.key})
    assert answer.status_code == 400, answer.text
    assert answer.json()["type"] == "error"
    assert box.query("SELECT count(*) FROM hold") == [(0,)]
    request_id = answer.headers["x-request-id"]
    kept = box.query("SELECT upstream_error FROM usage_record WHERE request_id = ?", request_id)
    assert kept, "no usage row"
    assert "a\\x00b: Extra inputs are not permitted" in kept[0][0]


@pytest.mark.parametrize(("route", "seed"), [s[1:] for s in SEEDS], ids=[s[0] for s in SEEDS])
def test_a_nul_in_any_string_of_a_body_makes_no_5xx(
    box: FuzzBox, route: str, seed: dict[str, object]
) -> None:
    problems = []
    with box.http(box.key) as http:
        for at in places(seed):
            body = json.dumps(replaced(seed, at, NUL)).encode()
            answer = http.post(route, content=body, headers=JSON_TYPE)
            problems += [f"{at}: {problem}" for problem in
                         error_problems(answer, route, box.secrets())]  # fmt: skip
        answer = http.post(route, json={**seed, NUL: 1})
        problems += [f"a key: {problem}" for problem in
                     error_problems(answer, route, box.secrets())]  # fmt: skip
    assert not problems, "\n".join(problems)
    assert box.query("SELECT count(*) FROM hold") == [(0,)]


@pytest.mark.parametrize("session_id", ["cs_%00", "cs_a%00b", "cs_" + "x" * 3000, "cs_%ED%A0%80"])
def test_a_return_page_for_a_session_id_that_is_no_stripe_id_thanks_all_the_same(
    box: FuzzBox, session_id: str
) -> None:
    """Anyone may open /billing/success?session_id=...: one holding a NUL was looked up as
    it came, which PostgreSQL refuses: a 500."""
    with box.http() as http:
        answer = http.get(f"/billing/success?session_id={session_id}")
    assert answer.status_code == 200, answer.text[:300]
    assert "Thank you" in answer.text and answer.headers.get("x-request-id")
