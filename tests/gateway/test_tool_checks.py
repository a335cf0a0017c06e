"""The tool checks of every call (providers/billed_fields.py) tell a body without tools at
once; a tool named only by `tool_choice`, or listed in `tools`, is still found."""

from __future__ import annotations

from typing import Any

import pytest

from codelace_box.errors import InvalidRequest
from codelace_box.providers.billed_fields import check_billed_fields, runs_server_tools

CHOSEN = {"type": "allowed_tools", "allowed_tools": {"tools": [{"type": "web_search_preview"}]}}


@pytest.mark.parametrize(
    ("body", "runs"),
    [
        ({}, False),
        ({"tools": [], "tool_choice": "auto"}, False),
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, False),
        ({"tool_choice": {"type": "web_search_preview"}}, True),
        ({"tool_choice": CHOSEN}, True),
        ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, True),
        ({"mcp_servers": [{"type": "url", "url": "https://mcp.example"}]}, True),
    ],
)
def test_server_tools_are_found_wherever_they_are_named(body: dict[str, Any], runs: bool) -> None:
    assert runs_server_tools(body) is runs


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"tool_choice": {"type": "web_search_preview"}}, "tool_choice"),
        ({"tool_choice": CHOSEN}, "tool_choice.allowed_tools.tools[0]"),
        ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools"),
    ],
)
def test_a_tool_the_provider_runs_is_refused_without_its_field(
    body: dict[str, Any], param: str
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        check_billed_fields({"messages": [], **body}, (), "acme/m1")
    assert refused.value.code == "field_not_allowed"
    assert refused.value.param == param


def test_a_body_without_tools_passes() -> None:
    check_billed_fields({"messages": [{"role": "user", "content": "hi"}], "tools": []}, (), "m")
