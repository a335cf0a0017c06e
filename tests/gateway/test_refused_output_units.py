"""Which structured-output fields an upstream's refusal names as unknown (gateway/
refused_output.py), and how a request is rewritten for them (providers/anthropic_output.py);
which refusals are of the two output cap fields sent together."""

from __future__ import annotations

import pytest

from codelace_box.gateway.refused_output import caps_refused_together, refused_output_fields
from codelace_box.providers.anthropic_output import LEGACY_BETA, fit_output_fields

FORMAT = {"type": "json_schema", "schema": {"type": "object"}}


@pytest.mark.parametrize(
    ("status", "message", "named"),
    [
        (400, "output_config: Extra inputs are not permitted", {"output_config"}),
        (422, "body.output_format: Extra inputs are not permitted", {"output_format"}),
        (400, "extraneous key [output_config] is not permitted", {"output_config"}),
        (400, "Unknown parameter: 'output_format'.", {"output_format"}),
        (400, "output_config.format.schema: property 'minimum' is not supported", set()),
        (400, "output_config.effort: Input should be 'low', 'medium' or 'high'", set()),
        (400, "output_config: Input should be a valid dictionary", set()),
        (500, "output_config: Extra inputs are not permitted", set()),
    ],
)
def test_only_a_field_refused_as_unknown_is_named(status: int, message: str, named: set) -> None:
    assert refused_output_fields(status, message) == named


@pytest.mark.parametrize(
    ("status", "message", "together"),
    [
        (
            400,
            "The parameter `max_tokens` specified in the request are not valid: max_tokens and "
            "max_completion_tokens cannot be set at the same time.",
            True,
        ),
        (
            400,
            "Setting 'max_tokens' and 'max_completion_tokens' at the same time is not supported.",
            True,
        ),
        (422, "max_tokens and max_completion_tokens are mutually exclusive", True),
        (
            400,
            "'max_tokens' or 'max_completion_tokens' is too large: 9000. This model's maximum "
            "context length is 8192 tokens",
            False,
        ),
        (400, "max_completion_tokens must be at least 1 for both choices", False),
        (500, "max_tokens and max_completion_tokens cannot be set at the same time", False),
    ],
)
def test_only_a_refusal_of_both_cap_fields_at_once_is_one(
    status: int, message: str, together: bool
) -> None:
    """vLLM's cap too large names both fields too: not a refusal of the two together."""
    assert caps_refused_together(status, message) is together


def test_an_effort_only_output_config_is_left_out_and_nothing_added() -> None:
    headers: dict[str, str] = {}
    body = {"model": "m", "output_config": {"effort": "low"}}
    assert fit_output_fields(body, headers, frozenset({"output_config"})) == {"model": "m"}
    assert headers == {}


def test_the_legacy_form_adds_its_beta_to_the_clients_betas() -> None:
    headers = {"anthropic-beta": "interleaved-thinking-2025-05-14"}
    body = {"model": "m", "output_config": {"format": FORMAT, "effort": "low"}}
    out = fit_output_fields(body, headers, frozenset({"output_config"}))
    assert out == {"model": "m", "output_format": FORMAT}
    assert headers["anthropic-beta"] == f"interleaved-thinking-2025-05-14,{LEGACY_BETA}"
    assert body["output_config"]["effort"] == "low", "the client's body is not changed"


def test_nothing_refused_leaves_the_body_as_it_is() -> None:
    body = {"model": "m", "output_config": {"format": FORMAT}}
    assert fit_output_fields(body, {}, frozenset()) is body
