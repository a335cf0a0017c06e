"""Acceptance of the README's "Command line" for the model catalog: `models set/list/disable/
enable` with every option as written and their mistakes, from outside (as
tests/acceptance/test_cli_commands.py).
"""

from __future__ import annotations

import pytest

from tests.acceptance.cli_tools import Box

pytestmark = pytest.mark.timeout(120)


def test_models_set_with_every_option_list_disable_enable(space: Box) -> None:
    space.ok("providers", "add", "mprov", "--kind", "openai", "--key", "sk-m")
    space.ok("models", "set", "mprov/gpt-x", "--input-per-1m", "1.25", "--output-per-1m", "10")
    space.ok(
        "models", "set", "local/llama-3.3-70b", "--input-per-1m", "0.01",
        "--output-per-1m", "0.02", "--provider", "mprov", "--upstream-model", "llama3.3:70b",
        "--max-output-tokens", "4096",
    )  # fmt: skip
    listed = {m["id"]: m for m in space.json("models", "list")}
    gpt, llama = listed["mprov/gpt-x"], listed["local/llama-3.3-70b"]
    assert (gpt["provider"], gpt["upstream_model"]) == ("mprov", "gpt-x")
    assert (gpt["input_per_1m"], gpt["output_per_1m"]) == (1.25, 10)
    assert (llama["provider"], llama["upstream_model"]) == ("mprov", "llama3.3:70b")
    assert (llama["input_per_1m"], llama["output_per_1m"]) == (0.01, 0.02)
    assert llama["max_output_tokens"] == 4096 and llama["enabled"] is True
    space.ok("models", "disable", "local/llama-3.3-70b")
    assert {m["id"]: m for m in space.json("models", "list")}["local/llama-3.3-70b"][
        "enabled"
    ] is False
    space.ok("models", "enable", "local/llama-3.3-70b")
    assert "local/llama-3.3-70b" in space.ok("models", "list")


def test_models_set_again_changes_prices_and_keeps_the_rest(space: Box) -> None:
    """A price change must not reset the provider, upstream name or output cap set before."""
    space.ok("providers", "add", "kprov", "--kind", "openai", "--key", "sk-k")
    space.ok(
        "models", "set", "team/llama", "--input-per-1m", "0.1", "--output-per-1m", "0.2",
        "--provider", "kprov", "--upstream-model", "llama-3.3-70b", "--max-output-tokens", "2048",
    )  # fmt: skip
    space.ok("models", "set", "team/llama", "--input-per-1m", "0.3", "--output-per-1m", "0.4")
    model = {m["id"]: m for m in space.json("models", "list")}["team/llama"]
    assert (model["input_per_1m"], model["output_per_1m"]) == (0.3, 0.4)
    assert (model["provider"], model["upstream_model"]) == ("kprov", "llama-3.3-70b")
    assert model["max_output_tokens"] == 2048


@pytest.mark.parametrize(
    "args",
    [
        ("models", "set", "nope/x", "--input-per-1m", "1", "--output-per-1m", "1"),
        ("models", "set", "no-slash", "--input-per-1m", "1", "--output-per-1m", "1"),
        ("models", "set", "mbad/x", "--input-per-1m", "abc", "--output-per-1m", "1"),
        ("models", "set", "mbad/x", "--input-per-1m", "-1", "--output-per-1m", "1"),
        ("models", "set", "mbad/x", "--input-per-1m", "1e400", "--output-per-1m", "1"),
        ("models", "set", "mbad/x", "--input-per-1m", "1", "--output-per-1m", "Infinity"),
        ("models", "set", "mbad/x", "--input-per-1m", "1e-999999999", "--output-per-1m", "1"),
        ("models", "set", "mbad/x", "--input-per-1m", "1e999999999", "--output-per-1m", "1"),
        (
            "models",
            "set",
            "mbad/x",
            "--input-per-1m",
            "1",
            "--output-per-1m",
            "1",
            "--max-output-tokens",
            "9" * 25,
        ),
        ("models", "set", "mbad/x", "--input-per-1m", "1"),  # --output-per-1m is required
        (
            "models",
            "set",
            "mbad/x",
            "--input-per-1m",
            "1",
            "--output-per-1m",
            "1",
            "--max-output-tokens",
            "0",
        ),
        ("models", "disable", "mbad/none"),
        ("models", "enable", "mbad/none"),
    ],
)
def test_model_mistakes_fail_with_one_line(space: Box, args: tuple[str, ...]) -> None:
    if "mbad" not in space.ok("providers", "list"):
        space.ok("providers", "add", "mbad", "--kind", "openai", "--key", "sk-bad")
    line = space.fail(*args)
    assert "Traceback" not in line and "unexpected" not in line, line
    assert "mbad/x" not in space.ok("models", "list")


def test_tiny_prices_print_in_plain_notation(space: Box) -> None:
    space.ok("providers", "add", "tiny", "--kind", "openai", "--key", "sk-tiny")
    said = space.ok("models", "set", "tiny/m", "--input-per-1m", "0.000001", "--output-per-1m", "2")
    assert "$0.000001 in / $2 out" in said
    row = next(line for line in space.ok("models", "list").splitlines() if "tiny/m" in line)
    assert "0.000001" in row.split() and "e-" not in row


def test_a_price_finer_than_a_nano_dollar_is_refused_saying_why(space: Box) -> None:
    """`--input-per-1m 0.0000000001` is a non-negative USD amount, yet it was refused as not
    being one: the line says that prices go to the nano-dollar (at most 9 decimals, as every
    USD amount on the command line: test_cli_usd_amounts.py)."""
    if "mbad" not in space.ok("providers", "list"):
        space.ok("providers", "add", "mbad", "--kind", "openai", "--key", "sk-bad")
    line = space.fail("models", "set", "mbad/fine", "--input-per-1m", "0.0000000001",
                      "--output-per-1m", "1")  # fmt: skip
    assert "'--input-per-1m'" in line and "at most 9 decimals" in line, line
    line = space.fail("models", "set", "mbad/fine", "--input-per-1m", "1",
                      "--cache-read-per-1m", "0.0000000015", "--output-per-1m", "1")  # fmt: skip
    assert "'--cache-read-per-1m'" in line and "at most 9 decimals" in line, line
    assert "not a USD amount: 'cheap'" in space.fail(
        "models", "set", "mbad/fine", "--input-per-1m", "cheap", "--output-per-1m", "1"
    )
    assert "mbad/fine" not in space.ok("models", "list")
