"""The docs' lists are the code's own: the Anthropic error type of every status the Messages
routes answer with, the Responses fields taken and refused, the columns of `usage export`, the
upstream refusals read as the operator's provider account out of credit, the currencies a
top-up takes in whole units, and the README's Contents (every section linked)."""

from __future__ import annotations

import re
from pathlib import Path

from codelace_box.billing.checkout import WHOLE_UNITS_ONLY, topup_decimals
from codelace_box.gateway.dialects import ANTHROPIC_ERROR_TYPES
from codelace_box.providers import adapter_for
from codelace_box.providers.responses_request import REFUSED_FIELDS
from tests.support import REPO_ROOT

README = REPO_ROOT / "README.md"
HTTP_REFERENCE = REPO_ROOT / "docs" / "http-api.md"
STATUS_TYPE = re.compile(r"\b((?:[45]\d\d/)*[45]\d\d) `([a-z_]+)`")
UPSTREAM_ONLY = {529}  # Anthropic's overload status: read from an upstream, never answered
# Upstream refusals that mean the operator's account (or key) there cannot pay: (provider kind,
# status, the upstream's words, what the docs call it). Each moves on to the next key and ends
# as 503 provider_out_of_credit, the key left in rotation (never probed, never parked).
WANTS_PAYMENT = [
    ("openai", 402, "Insufficient credits", "402"),
    ("openai", 429, "You exceeded your current quota (insufficient_quota)", "insufficient_quota"),
    ("openai", 429, "Your account is not active (billing_not_active)", "billing_not_active"),
    ("openai", 403, "Key limit exceeded (daily limit). Manage it using ...", "Key limit exceeded"),
    ("anthropic", 403, "Key limit exceeded (weekly limit)", "Key limit exceeded"),
    ("anthropic", 400, "Your credit balance is too low to access", "credit balance is too low"),
    ("anthropic", 400, "You have reached your specified API usage limits", "specified API"),
    ("anthropic", 429, "You have reached your API usage limits", "your API usage limits"),
]


def flat(path: Path) -> str:
    return " ".join(path.read_text().split())


def documented_types(text: str) -> dict[int, str]:
    found: dict[int, str] = {}
    for statuses, kind in STATUS_TYPE.findall(text):
        for status in statuses.split("/"):
            found.setdefault(int(status), kind)
    return found


def test_the_messages_api_error_types_are_the_types_the_box_answers() -> None:
    """docs/http-api.md left out 405 and 408 and the README summed up 5xx as `api_error` /
    `overloaded_error`: a client matching on Anthropic's types (Claude Code retries
    `overloaded_error` and `timeout_error`) could not tell a 504 from another 5xx. Both lists now
    give every status the box answers on these routes with its type (dialects.py)."""
    readme = flat(README).split("- **Errors** on these two routes", 1)[1].split("- **", 1)[0]
    reference = flat(HTTP_REFERENCE).split("Errors on both routes are", 1)[1].split("## ", 1)[0]
    for name, text in (("README.md", readme), ("docs/http-api.md", reference)):
        documented = documented_types(text)
        for status, kind in ANTHROPIC_ERROR_TYPES.items():
            if status not in UPSTREAM_ONLY:
                assert documented.get(status) == kind, f"{name}: {status} is `{kind}`"
        for status in (500, 502):
            assert documented.get(status) == "api_error", f"{name}: {status} is `api_error`"


def test_the_refused_responses_fields_are_those_the_box_refuses() -> None:
    """The README and docs/http-api.md list the Responses fields that are a 400 naming the
    field; a field added to REFUSED_FIELDS (or taken out) changes both lists."""
    readme = flat(README).split("- **Refused** with a 400", 1)[1].split("- **", 1)[0]
    readme = readme.split("names the field:", 1)[1]
    reference = flat(HTTP_REFERENCE).split("## Responses API", 1)[1].split("## ", 1)[0]
    reference = reference.split("`previous_response_id`", 1)[1].split("Errors use", 1)[0]
    reference = "`previous_response_id`" + reference
    for name, text in (("README.md", readme), ("docs/http-api.md", reference)):
        named = set(re.findall(r"`([a-z_]+)(?::[^`]*)?`", text.split("hosted tool", 1)[0]))
        assert named == set(REFUSED_FIELDS) | {"truncation"}, name


def test_every_responses_field_the_box_takes_is_in_the_supported_list() -> None:
    """The README's "Supported" list names every top-level Responses field the box takes and
    acts on (the refused and the ignored ones have their own lists): a field the code starts to
    pass on is listed, or this fails."""
    from codelace_box.providers.responses_request import IGNORED_FIELDS, KNOWN_FIELDS

    supported = flat(README).split("- **Supported:**", 1)[1].split("- **How it reaches", 1)[0]
    named = set(re.findall(r"`([a-z_]+)`", supported))
    taken = KNOWN_FIELDS - set(REFUSED_FIELDS) - set(IGNORED_FIELDS) - {"model", "stream"}
    assert taken - {"text", "reasoning"} <= named, sorted(taken - named)
    assert {"text.format", "reasoning.effort"} <= set(re.findall(r"`([a-z_.]+)`", supported))


def test_the_usage_export_row_names_the_columns_the_export_writes() -> None:
    """The command table's `usage export` row named 9 of the 18 columns the export writes
    (no provider, upstream model, error code, stream, estimated, cache tokens or duration)."""
    from codelace_box.db.history import EXPORT_COLUMNS

    lines = README.read_text().splitlines()
    row = next(line for line in lines if line.startswith("| `usage export"))
    described = re.split(r"(?<!\\)\|", row)[2]  # the cell after the command's, `\|` kept
    named = [name for name in re.findall(r"`([a-z_]+)`", described) if name in EXPORT_COLUMNS]
    assert named == list(EXPORT_COLUMNS), row


def test_the_readme_contents_link_every_section() -> None:
    """The README is some 2,000 lines: its Contents list is how a reader finds a section, so
    it links every `##` heading (a new section is listed, or this fails)."""
    text = README.read_text()
    block = text.split("**Contents.**", 1)[1].split("\n\n", 1)[0]
    linked = set(re.findall(r"\]\(#([^)]+)\)", block))
    sections = re.findall(r"^## (.+)$", re.sub(r"```.*?```", "", text, flags=re.S), re.M)
    missing = [s for s in sections if re.sub(r"[^\w\- ]", "", s.lower()).replace(" ", "-")
               not in linked]  # fmt: skip
    assert not missing, missing


def test_the_provider_out_of_credit_lists_name_every_refusal_read_so() -> None:
    """The README's "Provider out of credit" named Anthropic's refusals but neither OpenAI's 429
    `insufficient_quota`/`billing_not_active` nor OpenRouter's 403 "Key limit exceeded" (read as
    wanting payment since, not as a refused key to probe and park); docs/http-api.md's list of
    the final 503s left the last out too."""
    readme = flat(README).split("- **Provider out of credit:**", 1)[1].split("- **", 1)[0]
    reference = flat(HTTP_REFERENCE).split("whose account is out of credit", 1)[1]
    reference = reference.split("A refusal by the box", 1)[0]
    for kind, status, words, named in WANTS_PAYMENT:
        assert adapter_for(kind).wants_payment(status, words), (kind, status, words)
        assert named in readme, f"README.md: {named!r} ({kind} {status})"
        if kind == "openai":
            assert named in reference, f"docs/http-api.md: {named!r}"


def test_the_checkout_amounts_say_which_currencies_take_whole_units() -> None:
    """Both docs said a top-up is in whole cents; in a currency without cents (`jpy`) and in
    `isk` (two-decimal in Stripe's API, charged in whole units only) 10.50 is a 400."""
    readme = flat(README).split("- `POST /api/v1/stripe/checkout", 1)[1].split("- `POST", 1)[0]
    reference = flat(HTTP_REFERENCE).split("`checkout` starts a top-up", 1)[1].split(". ", 1)[0]
    for currency in ("jpy", *sorted(WHOLE_UNITS_ONLY)):
        assert topup_decimals(currency) == 0, currency
        for name, text in (("README.md", readme), ("docs/http-api.md", reference)):
            assert "whole units" in text and f"`{currency}`" in text, f"{name}: {currency}"
