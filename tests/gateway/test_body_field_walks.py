"""The per-call checks of a body's typed and billed fields (gateway/request.py `_check_types`,
providers/billed_fields.py `check_billed_fields`) skip their walks for a body that names none
of the fields: each field, sent alone in an otherwise plain body, is still checked. The names
are spelled out here, not read from the modules, so a field left out of a shortcut's set is
caught."""

from __future__ import annotations

from typing import Any

import pytest

from codelace_box.errors import InvalidRequest
from codelace_box.gateway.request import validate_body
from codelace_box.providers.billed_fields import check_billed_fields

PLAIN = {"model": "m/x", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 64}
WRONG_TYPES: dict[str, Any] = {
    "temperature": "hot", "top_p": "all", "presence_penalty": True, "frequency_penalty": [],
    "user": 7, "tools": {}, "tool_choice": 3, "response_format": "json", "stop": 5,
    "stream_options": [], "logit_bias": [], "metadata": "m", "reasoning_effort": 1,
    "parallel_tool_calls": "yes", "stream": "yes", "seed": 1.5,
}  # fmt: skip
BILLED = (
    "models", "route", "fallbacks", "plugins", "provider", "transforms", "preset",
    "web_search_options", "service_tier", "modalities", "audio", "speed", "inference_geo",
    "mcp_servers",
)  # fmt: skip


def test_a_plain_body_passes_both_checks() -> None:
    assert validate_body(dict(PLAIN)) == "m/x"
    check_billed_fields(dict(PLAIN), (), "m/x")


@pytest.mark.parametrize("name", sorted(WRONG_TYPES))
def test_each_typed_field_sent_alone_is_checked(name: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        validate_body(PLAIN | {name: WRONG_TYPES[name]})
    assert refused.value.param == name


@pytest.mark.parametrize("name", BILLED)
def test_each_billed_field_sent_alone_is_refused(name: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        check_billed_fields(PLAIN | {name: "billed-value"}, (), "m/x")
    assert (refused.value.code, refused.value.param) == ("field_not_allowed", name)
    check_billed_fields(PLAIN | {name: "billed-value"}, (name,), "m/x")  # allowed: passes


@pytest.mark.parametrize("stop", [[5], ["END", None], [["END"]]])
def test_a_stop_list_holding_what_is_no_string_is_refused(stop: list[Any]) -> None:
    """OpenAI refuses it (400 for `stop[0]`); toward an Anthropic model the box dropped such
    entries, so `"stop": [5]` asked for no stop at all and the answer ran on (and was charged)."""
    with pytest.raises(InvalidRequest) as refused:
        validate_body(PLAIN | {"stop": stop})
    assert refused.value.param == "stop"
    assert refused.value.status == 400
