"""Every USD amount the command line takes (credit, key caps, model prices) is read by one
parser: plain decimal digits, at most 9 decimals (the nano-dollar), a sign only on `credit`;
anything else is the same usage error (exit 2) naming the option."""

from __future__ import annotations

from tests.foundation.conftest import Workspace

ADA = "ada@example.com"
AMOUNT_OPTIONS = {  # the option's name as click shows it, and a command line around the amount
    "AMOUNT_USD": lambda amount: ("credit", ADA, amount, "--reason", "r"),
    "--limit-usd": lambda amount: ("keys", "create", ADA, "--limit-usd", amount),
    "--limit-usd ": lambda amount: ("keys", "update", "0f0f0f0f", "--limit-usd", amount),
    "--input-per-1m": lambda amount: ("models", "set", "a/b", "--input-per-1m", amount),
    "--output-per-1m": lambda amount: ("models", "set", "a/b", "--output-per-1m", amount),
    "--cache-read-per-1m": lambda amount: ("models", "set", "a/b", "--cache-read-per-1m", amount),
    "--cache-write-per-1m": lambda amount: ("models", "set", "a/b", "--cache-write-per-1m", amount),
    "--cache-write-1h-per-1m": lambda amount: (
        "models", "set", "a/b", "--cache-write-1h-per-1m", amount
    ),
}  # fmt: skip
NOT_PLAIN = ("1e2", "nan", "inf", "1.0000000001", "0x10")
UNSIGNED = "plain decimal digits such as 20 or 12.5 (no sign, no exponent, at most 9 decimals)"
SIGNED = "plain decimal digits such as 20 or 12.5, '-' to remove (no exponent, at most 9 decimals)"


CLEARABLE = (
    "--limit-usd",
    "--cache-read-per-1m",
    "--cache-write-per-1m",
    "--cache-write-1h-per-1m",
)


def refusal(option: str, amount: str, signed: bool = False) -> str:
    """The one refusal every amount option gives (those taking 'none' say so)."""
    taken = SIGNED if signed else UNSIGNED
    taken += ", or none" if option.strip() in CLEARABLE else ""
    return f"error: Invalid value for '{option.strip()}': not a USD amount: {amount!r}: {taken}."


def test_every_usd_amount_refuses_what_is_not_a_plain_decimal_alike(workspace: Workspace) -> None:
    workspace.run("users", "create", ADA)
    for option, words in AMOUNT_OPTIONS.items():
        signed = option == "AMOUNT_USD"
        for amount in (*NOT_PLAIN, *(() if signed else ("-5", "+5"))):
            line = workspace.fail(*words(amount), code=2)
            assert line.startswith(f"{refusal(option, amount, signed)} (see: "), line
    assert workspace.json("users", "show", ADA)["credit_balance_usd"] == 0  # `1e2` credited none


def test_every_usd_amount_takes_plain_decimals(workspace: Workspace) -> None:
    workspace.run("users", "create", "grace@example.com")
    workspace.run("credit", "grace@example.com", " 12.5 ", "--reason", "seed")
    workspace.run("credit", "grace@example.com", "-.5", "--reason", "fix")
    workspace.run("credit", "grace@example.com", "+1.000000001", "--reason", "nano")
    assert (
        workspace.json("users", "show", "grace@example.com")["credit_balance_usd"] == 13.000000001
    )
    workspace.run("keys", "create", "grace@example.com", "--limit-usd", "20.")
    [key] = workspace.json("keys", "list", "grace@example.com")
    assert key["limit_usd"] == 20
    workspace.run("keys", "update", key["id"], "--limit-usd", "none")
    assert workspace.json("keys", "list", "grace@example.com")[0]["limit_usd"] is None


def test_account_limits_refused_as_usage_errors_naming_the_option(workspace: Workspace) -> None:
    """`users limits --rpm x` said 'rpm: must be ...' and exited 1, where every other bad
    option value (the amounts above, --max-output-tokens) is a usage error naming it."""
    workspace.run("users", "create", "lin@example.com")
    for option, value in (("--rpm", "-1"), ("--concurrent", "x"), ("--rpm", "1000001")):
        line = workspace.fail("users", "limits", "lin@example.com", option, value, code=2)
        assert line.startswith(f"error: Invalid value for '{option}': must be a whole"), line


PRICE_OPTIONS = [option for option in AMOUNT_OPTIONS if option.endswith("-per-1m")]


def test_amounts_out_of_range_are_usage_errors_naming_the_option(workspace: Workspace) -> None:
    """`credit EMAIL 0`, a credit past 1,000,000 USD either way and a price past 1,000,000 USD
    per 1M tokens exited 1 with the service's words, where every other bad amount is a usage
    error (exit 2) naming the option or argument; nothing credited or priced meanwhile."""
    workspace.run("users", "create", "max@example.com")
    for amount in ("0", "-0.000", "1000000.000000001", "-1000001"):
        line = workspace.fail("credit", "max@example.com", amount, "--reason", "r", code=2)
        assert line.startswith(
            "error: Invalid value for 'AMOUNT_USD': amount must be non-zero and at most "
            "1,000,000 USD either way (see: "
        ), line
    for option in PRICE_OPTIONS:
        line = workspace.fail(*AMOUNT_OPTIONS[option]("1000000.000000001"), code=2)
        assert line.startswith(
            f"error: Invalid value for '{option}': the price must be at most 1,000,000 USD per 1M "
        ), line
    workspace.run(
        "credit", "max@example.com", "1000000", "--reason", "the most"
    )  # the bounds are taken
    priced = ("models", "set", "a/b", "--input-per-1m", "1000000", "--output-per-1m", "0")
    assert "no provider named a" in workspace.fail(*priced)  # past the prices, to the provider
    assert workspace.json("users", "show", "max@example.com")["credit_balance_usd"] == 1_000_000
