"""Every value of every inference body replaced, one at a time, by a value of another JSON type:
the answer is a success or a 4xx (a 502 when the fake upstream itself chokes on it) in the
route's envelope, with a request id and no traceback or secret; no hold is left open, and a
refusal of the box's own (the upstream never asked) writes no usage row."""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import pytest

from tests.fuzz.bodies import SEEDS, places, replaced
from tests.fuzz.conftest import CHAT_MODEL, FuzzBox, error_problems

pytestmark = pytest.mark.timeout(120)
# One value of each JSON type a field may not expect; the array and the object are the ones a
# lookup in a set or a dict cannot hash.
HOSTILE: list[Any] = [None, -1, "x", [], {}]
JSON_TYPE = {"content-type": "application/json"}


@pytest.mark.parametrize(("route", "seed"), [s[1:] for s in SEEDS], ids=[s[0] for s in SEEDS])
def test_no_value_of_another_type_anywhere_in_a_body_makes_a_5xx(
    box: FuzzBox, route: str, seed: dict[str, Any]
) -> None:
    problems = []
    with box.http(box.key) as http:
        answer = http.post(route, json=seed)
        assert answer.status_code == 200, answer.text
        rows, asked = usage_rows(box), upstream_calls(box)
        for at in places(seed):
            for value in HOSTILE:
                body = json.dumps(replaced(seed, at, value)).encode()
                answer = http.post(route, content=body, headers=JSON_TYPE)
                problems += [f"{at} = {value!r}: {problem}" for problem in
                             error_problems(answer, route, box.secrets())]  # fmt: skip
    assert not problems, "\n".join(problems)
    assert box.query("SELECT count(*) FROM hold") == [(0,)]
    assert usage_rows(box) - rows <= upstream_calls(box) - asked


def usage_rows(box: FuzzBox) -> int:
    return int(box.query("SELECT count(*) FROM usage_record")[0][0])


def upstream_calls(box: FuzzBox) -> int:
    """Requests the fake upstreams were sent (each writes at most one usage row)."""
    return len(box.openai.requests) + len(box.anthropic.requests)


# JSON's nesting the box takes: orjson's (it writes every body the box sends on), deeper than any
# client needs (serde_json stops at 128)
MOST_LEVELS = 254


def wrapped(levels: int, kind: str) -> Any:
    """A value `levels` arrays, objects or JSON schemas (two levels each) deep."""
    value: Any = {"type": "string"} if kind == "schema" else "x"
    for _ in range((levels - 1) // 2 if kind == "schema" else levels):
        if kind == "schema":
            value = {"type": "object", "properties": {"a": value}, "required": ["a"]}
        else:
            value = [value] if kind == "array" else {"a": value}
    return value


@pytest.mark.parametrize(("route", "seed"), [s[1:] for s in SEEDS], ids=[s[0] for s in SEEDS])
def test_a_body_nested_as_deep_as_the_box_takes_makes_no_5xx_anywhere(
    box: FuzzBox, route: str, seed: dict[str, Any]
) -> None:
    """Nesting from 255 levels on was read, up to the parser's own limit (near 1,000), and
    then the Anthropic schema translation recursed past Python's limit, or the body could not
    be written on to the upstream: a 500. Any value of any seed nested so the body is exactly
    as deep as the box takes is a success or a 4xx."""
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 5000))  # (this client's json.dumps)
    problems = []
    with box.http(box.key) as http:
        for at in places(seed):
            # a schema where schemas go (the recursive translations walk those), an array
            # anywhere
            in_schema = any(word in str(key) for key in at for word in ("schema", "parameters"))
            kinds = ("array", "schema") if in_schema else ("array",)
            for kind in kinds:
                body = replaced(seed, at, wrapped(MOST_LEVELS - len(at), kind))
                answer = http.post(route, content=json.dumps(body).encode(), headers=JSON_TYPE)
                problems += [f"{at} as {kind}: {problem}" for problem in
                             error_problems(answer, route, box.secrets())]  # fmt: skip
    assert not problems, "\n".join(problems)


DEEP_ROUTES = [
    "/v1/chat/completions", "/v1/messages", "/v1/messages/count_tokens", "/v1/responses",
    "/v1/embeddings", "/api/v1/auth/key", "/api/v1/auth/otp/request", "/portal/api/signin/code",
]  # fmt: skip


@pytest.mark.parametrize("route", DEEP_ROUTES)
@pytest.mark.parametrize("levels", [MOST_LEVELS + 1, 600, 990])
@pytest.mark.parametrize("seed", [1, 10**30], ids=["int", "int-past-64-bits"])
def test_a_body_nested_deeper_than_the_box_takes_is_a_400(
    box: FuzzBox, route: str, levels: int, seed: int
) -> None:
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 5000))
    body = {"model": CHAT_MODEL, "max_tokens": 5, "seed": seed,
            "metadata": wrapped(levels - 1, "object")}  # fmt: skip
    with box.http(box.key) as http:
        answer = http.post(route, content=json.dumps(body).encode(), headers=JSON_TYPE)
    assert answer.status_code == 400, answer.text
    assert not error_problems(answer, route, box.secrets())
    assert "nested too deeply" in answer.json()["error"]["message"]


LONG = "b" * 200_000  # within the body limit: the text an error would quote
HI = [{"role": "user", "content": "hi"}]
QUOTED = [
    ("/v1/chat/completions", {"model": f"a/{LONG}", "messages": HI}),
    ("/v1/messages", {"model": LONG, "max_tokens": 5, "messages": HI}),
    ("/v1/messages/count_tokens", {"model": f"a/{LONG}", "messages": HI}),
    ("/v1/responses", {"model": CHAT_MODEL, "input": "hi", LONG: 1}),
    ("/v1/responses", {"model": CHAT_MODEL, "input": "hi", "tools": [{"type": LONG}]}),
    ("/v1/embeddings", {"model": f"a/{LONG}", "input": "hi"}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("route", "body"), QUOTED, ids=[f"{route}-{i}" for i, (route, _) in enumerate(QUOTED)]
)
def test_an_error_quotes_a_long_value_only_in_part(
    box: FuzzBox, route: str, body: dict[str, Any]
) -> None:
    """An unknown model or field was quoted whole in the error's message: a 200 KB model name
    came back as a 200 KB error. The message keeps its first 2,000 characters (what it says,
    and the start of what was sent) and says how much was cut."""
    with box.http(box.key) as http:
        answer = http.post(route, json=body, headers={"x-api-key": box.key})
    assert 400 <= answer.status_code < 500, answer.text[:300]
    assert not error_problems(answer, route, box.secrets())
    message = answer.json()["error"]["message"]
    assert len(message) < 2_100 and "bbbb" in message
    assert re.search(r"\(\d{6} more characters\)$", message), message[-100:]
