"""The output cap a call reserves for: the larger of the client's two fields, in either order;
one alone; neither: the route's own, else the box's default (gateway/request.py output_cap).
llama.cpp's `n_predict`, which its server reads over both, is a third."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest

from codelace_box.gateway.request import DEFAULT_MAX_OUTPUT_TOKENS, output_cap


@pytest.mark.parametrize(
    ("body", "route_cap", "expected"),
    [
        ({"max_tokens": 50, "max_completion_tokens": 70}, 0, (70, True)),
        ({"max_tokens": 90, "max_completion_tokens": 70}, 0, (90, True)),
        ({"max_tokens": 70, "max_completion_tokens": 70}, 0, (70, True)),
        ({"max_tokens": 40}, 900, (40, True)),
        ({"max_completion_tokens": 40}, 900, (40, True)),
        ({"max_tokens": 1, "n_predict": 3000}, 0, (3000, True)),  # llama.cpp's, over both
        ({"max_tokens": 90, "max_completion_tokens": 70, "n_predict": 80}, 0, (90, True)),
        ({"max_completion_tokens": 70, "n_predict": 60}, 0, (70, True)),
        ({"n_predict": 40}, 900, (40, True)),
        ({"n_predict": None}, 900, (900, False)),
        ({}, 900, (900, False)),
        ({}, 0, (DEFAULT_MAX_OUTPUT_TOKENS, False)),
    ],
)
def test_the_cap_is_the_larger_field_else_the_routes(
    body: dict[str, Any], route_cap: int, expected: tuple[int, bool]
) -> None:
    route = cast(Any, SimpleNamespace(max_output_tokens=route_cap))
    assert output_cap(body, route) == expected
