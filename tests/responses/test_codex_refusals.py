"""The real Codex CLI (`codex exec`) refused by the box before any upstream call: what the user
reads must name what Codex can act on, in the Responses API's own terms. Codex retries every
refusal but a 400 five times (its own policy, about 8 s here) before it shows the last one.
Skipped, as test_codex.py is, without `codex`.
"""

from __future__ import annotations

from pathlib import Path

from tests.responses.conftest import ResponsesBox
from tests.responses.test_codex import CODEX, codex_exec, pytestmark  # noqa: F401


def test_too_little_credit_names_the_responses_output_cap(
    fresh: ResponsesBox, tmp_path: Path
) -> None:
    """Short of credit, Codex showed "add credit or lower max_tokens": a field the Responses API
    does not have (its cap is `max_output_tokens`); the 400s were already renamed so. (With no
    credit at all no cap is named: tests/limits/test_spent_refusals.py.)"""
    email, key = fresh.new_key(credit_usd="0.001")
    done = codex_exec(fresh, tmp_path, key, "Say hello.")
    assert done.returncode != 0
    shown = done.stdout + done.stderr
    assert "402 Payment Required" in shown and "add credit" in shown, shown[-2000:]
    assert "this request holds $" in shown and "output tokens" in shown, shown[-2000:]
    assert "max_output_tokens" in shown and "max_tokens" not in shown.replace(
        "max_output_tokens", ""
    ), shown[-2000:]
    assert fresh.openai_fake.requests == [] and fresh.usage_rows(email) == []


def test_a_key_cap_names_the_responses_output_cap(fresh: ResponsesBox, tmp_path: Path) -> None:
    """A key whose spend limit cannot cover the call: 402 key_limit_reached in Responses terms."""
    email, _ = fresh.new_key()
    key = fresh.cli("keys", "create", email, "--limit-usd", "0.000001").strip().splitlines()[0]
    done = codex_exec(fresh, tmp_path, key, "Say hello.")
    assert done.returncode != 0
    shown = done.stdout + done.stderr
    assert "limit_usd" in shown and "max_output_tokens" in shown, shown[-2000:]
    assert "this request holds $" in shown, shown[-2000:]
    assert "max_tokens" not in shown.replace("max_output_tokens", ""), shown[-2000:]
    assert fresh.openai_fake.requests == []
