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
    does not have (its cap is `max_output_tokens`); the 400s were already renamed so. Codex
    sends no max_output_tokens, so the 402 says the model's cap is held and what Codex can
    choose instead. $0.015: Codex's input (about $0.0104 held) fits, 4,096 output tokens
    ($0.0082) do not. (With no credit at all no cap is named: tests/limits/
    test_spent_refusals.py.)"""
    email, key = fresh.new_key(credit_usd="0.015")
    done = codex_exec(fresh, tmp_path, key, "Say hello.")
    assert done.returncode != 0
    shown = done.stdout + done.stderr
    assert "402 Payment Required" in shown and "add credit" in shown, shown[-2000:]
    assert "this request holds $" in shown and "output tokens" in shown, shown[-2000:]
    assert "it sent no max_output_tokens, so the model's cap is held" in shown, shown[-2000:]
    assert "(codex -m)" in shown, shown[-2000:]
    assert "max_output_tokens" in shown and "max_tokens" not in shown.replace(
        "max_output_tokens", ""
    ), shown[-2000:]
    assert fresh.openai_fake.requests == [] and fresh.usage_rows(email) == []


def test_a_key_cap_short_of_codexs_input_says_so_in_codexs_terms(
    fresh: ResponsesBox, tmp_path: Path
) -> None:
    """A key whose spend limit cannot cover even Codex's input (its prompt and tools, about
    $0.0104 held): 402 key_limit_reached that says so and what helps (Codex's /new, a higher
    limit), not to lower an output cap, which cannot help and Codex does not send."""
    email, _ = fresh.new_key()
    key = fresh.cli("keys", "create", email, "--limit-usd", "0.005").strip().splitlines()[0]
    done = codex_exec(fresh, tmp_path, key, "Say hello.")
    assert done.returncode != 0
    shown = done.stdout + done.stderr
    assert "this request's input alone holds $0.01" in shown, shown[-2000:]
    assert "more than the $0.005 left of this API key's spend limit" in shown, shown[-2000:]
    assert "send a shorter conversation (Codex: /new) or raise limit_usd" in shown, shown[-2000:]
    assert "max_output_tokens" not in shown and "max_tokens" not in shown, shown[-2000:]
    assert fresh.openai_fake.requests == []
