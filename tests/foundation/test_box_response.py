"""`BoxResponse` sends the very header bytes Sanic's own response sends (CR, LF and NUL taken
out of names and values), only faster for headers that hold none of them."""

from __future__ import annotations

import pytest
from sanic.response import HTTPResponse

from codelace_box.api.common import BoxResponse

HEADERS = [
    {"x-request-id": "3f2a9c1e5b7d4e0f8a6b2c9d1e3f5a7b", "x-codelace-cost-usd": "0.000123"},
    {"x-injected": "a\r\nset-cookie: stolen=1", "x-nul": "a\x00b", "x-lf": "\n"},
    {"x-tab": "a\tb", "x-unicode": "caf\u00e9 \u2028 \u00a0", "x-number": 42},  # type: ignore[dict-item]
    {"x-bad\r\nname": "value", "x-empty": ""},
]


@pytest.mark.parametrize("headers", HEADERS)
@pytest.mark.parametrize("status", [200, 204, 304, 404])
def test_the_headers_sent_are_sanics_own(headers: dict[str, str], status: int) -> None:
    ours = BoxResponse(b"{}", status=status, headers=dict(headers), content_type="x/y")
    sanic = HTTPResponse(b"{}", status=status, headers=dict(headers), content_type="x/y")
    assert list(ours.processed_headers) == list(sanic.processed_headers)


def test_a_header_with_a_line_break_is_sent_without_it() -> None:
    response = BoxResponse(headers={"x-injected": "a\r\nset-cookie: stolen=1"})
    assert (b"x-injected", b"aset-cookie: stolen=1") in list(response.processed_headers)
