"""Acceptance of the README's "Command line" for upstream providers: `providers add/list/
key-add/disable/enable` and their mistakes, from outside (as tests/acceptance/test_cli_commands.py).
"""

from __future__ import annotations

import pytest

from tests.acceptance.cli_tools import Box, error_line

pytestmark = pytest.mark.timeout(120)


def test_providers_add_list_key_add_disable_enable(space: Box) -> None:
    secret = "sk-provider-secret-abcdef123456"
    space.ok("providers", "add", "prov1", "--kind", "openai", "--key", secret)
    space.ok(
        "providers", "add", "prov2", "--kind", "anthropic",
        "--base-url", "http://127.0.0.1:9/v1", "--key", "sk-ant-second-987654",
    )  # fmt: skip
    listed = {p["name"]: p for p in space.json("providers", "list")}
    assert listed["prov1"]["kind"] == "openai" and listed["prov1"]["enabled"] is True
    assert listed["prov2"]["kind"] == "anthropic"
    assert listed["prov2"]["base_url"] == "http://127.0.0.1:9/v1"
    assert len(listed["prov1"]["keys"]) == 1
    space.ok("providers", "key-add", "prov1", "--key", "sk-provider-third-000111")
    assert len({p["name"]: p for p in space.json("providers", "list")}["prov1"]["keys"]) == 2
    space.ok("providers", "disable", "prov1")
    assert {p["name"]: p for p in space.json("providers", "list")}["prov1"]["enabled"] is False
    space.ok("providers", "enable", "prov1")
    assert {p["name"]: p for p in space.json("providers", "list")}["prov1"]["enabled"] is True
    for shown in (space.ok("providers", "list"), space.ok("providers", "list", "--json")):
        assert secret not in shown and "sk-provider-third-000111" not in shown
    assert secret.encode() not in space.db_path.read_bytes()


@pytest.mark.parametrize(
    "args",
    [
        ("providers", "add", "p-bad", "--kind", "cohere", "--key", "k"),
        ("providers", "add", "p-bad", "--kind", "openai"),  # --key is required
        ("providers", "add", "p-bad", "--key", "k"),  # --kind is required
        ("providers", "add", "p-bad", "--kind", "openai", "--base-url", "ftp://x", "--key", "k"),
        ("providers", "key-add", "nope", "--key", "k"),
        ("providers", "disable", "nope"),
        ("providers", "enable", "nope"),
    ],
)
def test_provider_mistakes_fail_with_one_line(space: Box, args: tuple[str, ...]) -> None:
    space.fail(*args)
    assert "p-bad" not in space.ok("providers", "list")


def test_a_duplicate_provider_is_refused(space: Box) -> None:
    space.ok("providers", "add", "dupprov", "--kind", "openai", "--key", "k1")
    assert "dupprov" in space.fail("providers", "add", "dupprov", "--kind", "openai", "--key", "k")


@pytest.mark.parametrize("command", ["key-remove", "key-enable"])
def test_a_provider_key_id_past_any_integer_is_a_usage_error(space: Box, command: str) -> None:
    """A KEY_ID of 23 digits failed with "unexpected OverflowError: int too big to convert"
    (exit 1, as if the box broke): it is a usage mistake like any other (exit 2)."""
    name = f"bigid-{command}"
    space.ok("providers", "add", name, "--kind", "openai", "--key", "sk-big")
    result = space.cli("providers", command, name, "99999999999999999999999")
    line = error_line(result)
    assert "unexpected" not in line and "KEY_ID" in line, line
    assert result.returncode == 2
