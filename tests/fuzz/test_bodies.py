"""Every value of every inference body replaced, one at a time, by a value of another JSON type:
the answer is a success or a 4xx (a 502 when the fake upstream itself chokes on it) in the
route's envelope, with a request id and no traceback or secret; no hold is left open."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fuzz.bodies import SEEDS, places, replaced
from tests.fuzz.conftest import FuzzBox, error_problems

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
        for at in places(seed):
            for value in HOSTILE:
                body = json.dumps(replaced(seed, at, value)).encode()
                answer = http.post(route, content=body, headers=JSON_TYPE)
                problems += [f"{at} = {value!r}: {problem}" for problem in
                             error_problems(answer, route, box.secrets())]  # fmt: skip
    assert not problems, "\n".join(problems)
    assert box.query("SELECT count(*) FROM hold") == [(0,)]
