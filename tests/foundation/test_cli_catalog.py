"""`providers ...` and `models ...` as an operator runs them: keys stored encrypted and shown
masked, prices set and changed, clear one-line errors."""

from __future__ import annotations

import contextlib
import os
import re
import select
import subprocess
import sys
import time

from tests.foundation.conftest import Workspace
from tests.support import cli_env

OPENAI_KEY = "sk-proj-FOUNDATIONtestKEY0001"
SECOND_KEY = "sk-proj-FOUNDATIONtestKEY0002"
ANTHROPIC_KEY = "sk-ant-FOUNDATIONtestKEY0003"


def provider(workspace: Workspace, name: str) -> dict:  # type: ignore[type-arg]
    return next(p for p in workspace.json("providers", "list") if p["name"] == name)


def test_providers_add_list_and_key_add(workspace: Workspace) -> None:
    out = workspace.run(
        "providers", "add", "lab", "--kind", "openai",
        "--base-url", "http://127.0.0.1:9/v1/", "--key", OPENAI_KEY,
    ).stdout  # fmt: skip
    assert out == "added provider lab (openai)\n"
    workspace.run("providers", "add", "claude", "--kind", "anthropic", "--key", ANTHROPIC_KEY)
    lab = provider(workspace, "lab")
    assert (lab["kind"], lab["base_url"], lab["enabled"]) == (
        "openai",
        "http://127.0.0.1:9/v1",
        True,
    )
    assert [k["hint"] for k in lab["keys"]] == ["sk-…0001"]
    assert provider(workspace, "claude")["base_url"].startswith("https://api.anthropic.com")
    added = workspace.run("providers", "key-add", "lab", "--key", SECOND_KEY).stdout
    assert added.endswith("(sk-…0002) to lab\n")
    keys = provider(workspace, "lab")["keys"]
    assert [(k["hint"], k["enabled"], k["failing"]) for k in keys] == [
        ("sk-…0001", True, False),
        ("sk-…0002", True, False),
    ]
    human = workspace.run("providers", "list").stdout
    assert "lab" in human and "claude" in human and "sk-…0002" in human


def test_provider_keys_never_appear_in_output_or_in_the_database_file(
    workspace: Workspace,
) -> None:
    workspace.run("providers", "add", "hidden", "--kind", "openai", "--key", OPENAI_KEY + "X")
    outputs = (
        workspace.run("providers", "list").stdout
        + workspace.run("providers", "list", "--json").stdout
    )
    assert OPENAI_KEY not in outputs
    stored = workspace.sql(
        "SELECT key_encrypted FROM provider_key k JOIN provider p ON p.id = k.provider_id "
        "WHERE p.name = 'hidden'"
    )
    assert len(stored) == 1 and OPENAI_KEY.encode() not in bytes(stored[0][0])
    workspace.sql("PRAGMA wal_checkpoint(TRUNCATE)")
    assert OPENAI_KEY.encode() not in workspace.db_path.read_bytes()


def test_providers_errors(workspace: Workspace) -> None:
    workspace.run("providers", "add", "twice", "--kind", "openai", "--key", OPENAI_KEY)
    assert "already exists" in workspace.fail(
        "providers", "add", "twice", "--kind", "openai", "--key", OPENAI_KEY
    )
    assert "'--kind'" in workspace.fail(
        "providers", "add", "bad", "--kind", "mistral", "--key", "k", code=2
    )
    assert "base URL must start with http" in workspace.fail(
        "providers", "add", "bad", "--kind", "openai", "--base-url", "ftp://x", "--key", "k"
    )
    assert "provider name" in workspace.fail(
        "providers", "add", "Bad Name", "--kind", "openai", "--key", "k"
    )
    assert "must not be empty" in workspace.fail(
        "providers", "add", "blank", "--kind", "openai", "--key", "  "
    )
    assert "no provider named ghost" in workspace.fail(
        "providers", "key-add", "ghost", "--key", "k"
    )
    assert "no provider named ghost" in workspace.fail("providers", "disable", "ghost")
    assert "Missing option '--key'" in workspace.fail(
        "providers", "add", "nokey", "--kind", "openai", code=2
    )
    names = [p["name"] for p in workspace.json("providers", "list")]
    assert "bad" not in names and "blank" not in names and "nokey" not in names


def test_a_provider_name_refused_for_its_length_or_first_character_says_so(
    workspace: Workspace,
) -> None:
    """A 64-character name or one starting with '_' uses only the characters the error listed
    ("use lower-case letters, digits, '-', '_', '.'"): it told the operator nothing to fix."""
    for name, why in (("p" * 64, "at most 63"), ("_lab", "start with a letter or digit")):
        line = workspace.fail("providers", "add", name, "--kind", "openai", "--key", "k")
        assert why in line, line
    workspace.run("providers", "add", "p" * 63, "--kind", "openai", "--key", OPENAI_KEY)


def test_a_model_id_alias_or_upstream_name_refused_for_its_case_or_length_says_so(
    workspace: Workspace,
) -> None:
    """`models set OpenAI/gpt-4o` was refused as "must look like provider/model", which it
    does (provider names are lower-case); a name past 200 characters, or an alias starting
    with '_', was refused with the same words or with the characters it already used."""
    price = ("--input-per-1m", "1", "--output-per-1m", "2")
    workspace.run("providers", "add", "lenlab", "--kind", "openai", "--key", OPENAI_KEY)
    workspace.run("models", "set", "lenlab/m", *price)
    for args, why in (
        (("models", "set", "OpenAI/gpt-4o", *price), "lower-case"),
        (("models", "set", "lenlab/" + "m" * 201, *price), "at most 200"),
        (("models", "set", "lenlab/m", "--upstream-model", "u" * 201), "at most 200"),
        (("models", "alias", "_sonnet", "lenlab/m"), "start with a letter or digit"),
        (("models", "alias", "s" * 201, "lenlab/m"), "at most 200"),
    ):
        line = workspace.fail(*args)
        assert why in line, (args[:2], line)


def test_providers_disable_and_enable(workspace: Workspace) -> None:
    workspace.run("providers", "add", "toggle", "--kind", "openai", "--key", OPENAI_KEY)
    assert workspace.run("providers", "disable", "toggle").stdout == "provider toggle disabled\n"
    assert provider(workspace, "toggle")["enabled"] is False
    workspace.run("providers", "enable", "toggle")
    assert provider(workspace, "toggle")["enabled"] is True


def model(workspace: Workspace, model_id: str) -> dict:  # type: ignore[type-arg]
    return next(m for m in workspace.json("models", "list") if m["id"] == model_id)


def test_models_set_list_and_change_prices(workspace: Workspace) -> None:
    workspace.run("providers", "add", "acme", "--kind", "openai", "--key", OPENAI_KEY)
    out = workspace.run(
        "models", "set", "acme/fast-1", "--input-per-1m", "0.15", "--output-per-1m", "0.6"
    ).stdout
    assert out == "acme/fast-1: $0.15 in / $0.6 out per 1M tokens\n"
    assert model(workspace, "acme/fast-1") == {
        "id": "acme/fast-1",
        "provider": "acme",
        "upstream_model": "fast-1",
        "input_per_1m": 0.15,
        "output_per_1m": 0.6,
        "max_output_tokens": None,
        "context_tokens": None,
        "enabled": True,
        "cache_read_per_1m": 0.15,  # cache prices never set: the input price
        "cache_write_per_1m": 0.15,
        "cache_write_1h_per_1m": 0.15,
        "aliases": [],
        "served": True,  # its provider enabled
    }
    workspace.run(
        "models", "set", "acme/fast-1", "--input-per-1m", "0.01", "--output-per-1m", "2",
        "--upstream-model", "fast-1-2026", "--max-output-tokens", "4096",
        "--context-tokens", "128000",
    )  # fmt: skip
    changed = model(workspace, "acme/fast-1")
    assert (changed["input_per_1m"], changed["output_per_1m"]) == (0.01, 2.0)
    assert (changed["upstream_model"], changed["max_output_tokens"]) == ("fast-1-2026", 4096)
    assert changed["context_tokens"] == 128000
    assert "CONTEXT_TOKENS" in workspace.run("models", "list").stdout
    workspace.run("models", "set", "acme/fast-1", "--input-per-1m", "0.01", "--output-per-1m", "2")
    assert model(workspace, "acme/fast-1")["context_tokens"] == 128000  # kept when not given
    prices = workspace.sql(
        "SELECT input_per_1m_nanos, output_per_1m_nanos FROM catalog_model WHERE id = ?",
        ("acme/fast-1",),
    )
    assert prices == [(10_000_000, 2_000_000_000)]
    workspace.run(
        "models", "set", "vendor/x-large", "--provider", "acme",
        "--input-per-1m", "3", "--output-per-1m", "15",
    )  # fmt: skip
    assert model(workspace, "vendor/x-large")["provider"] == "acme"
    assert "acme/fast-1" in workspace.run("models", "list").stdout


def test_models_errors(workspace: Workspace) -> None:
    workspace.run("providers", "add", "errs", "--kind", "openai", "--key", OPENAI_KEY)
    price = ("--input-per-1m", "1", "--output-per-1m", "2")
    assert "'--input-per-1m': not a USD amount: 'cheap'" in workspace.fail(
        "models", "set", "errs/m", "--input-per-1m", "cheap", "--output-per-1m", "2", code=2
    )
    assert "'--output-per-1m': not a USD amount: '-2'" in workspace.fail(
        "models", "set", "errs/m", "--input-per-1m", "1", "--output-per-1m", "-2", code=2
    )
    assert "no provider named nowhere" in workspace.fail("models", "set", "nowhere/m", *price)
    assert "model id must look like provider/model" in workspace.fail(
        "models", "set", "no-slash", *price
    )
    for option in ("--max-output-tokens", "--context-tokens"):  # usage errors, as any bad value
        for count in ("0", "-5"):
            refused = workspace.fail("models", "set", "errs/m", *price, option, count, code=2)
            assert f"Invalid value for '{option}': {count} is not in the range 1<=x" in refused
    assert "a new model needs both its input and its output price" in workspace.fail(
        "models", "set", "errs/m", "--input-per-1m", "1"
    )
    assert "no model errs/ghost" in workspace.fail("models", "disable", "errs/ghost")
    assert not [m for m in workspace.json("models", "list") if m["id"].startswith("errs/")]


def test_whole_numbers_are_written_in_ascii_digits(workspace: Workspace) -> None:
    """Token counts, ports and key ids take the digits 0-9 only, as prices and limits do:
    click's own integer read "٣" as 3 and "1_000" as 1000."""
    workspace.run("providers", "add", "digits", "--kind", "openai", "--key", OPENAI_KEY)
    price = ("--input-per-1m", "1", "--output-per-1m", "2")
    for option, written in (("--max-output-tokens", "٣"), ("--context-tokens", "1_000")):
        refused = workspace.fail("models", "set", "digits/m", *price, option, written, code=2)
        assert f"'{written}' is not a whole number" in refused
    assert not [m for m in workspace.json("models", "list") if m["id"] == "digits/m"]
    assert "is not a whole number" in workspace.fail(
        "providers", "key-remove", "digits", "\u0661", code=2
    )
    assert "is not a whole number" in workspace.fail("serve", "--port", "٨٠٨٠", code=2)
    workspace.run("models", "set", "digits/m", *price, "--max-output-tokens", "+300")
    (model,) = [m for m in workspace.json("models", "list") if m["id"] == "digits/m"]
    assert model["max_output_tokens"] == 300


def test_a_cache_price_set_once_can_follow_the_input_price_again(workspace: Workspace) -> None:
    workspace.run("providers", "add", "cached", "--kind", "openai", "--key", OPENAI_KEY)
    workspace.run("models", "set", "cached/m", "--input-per-1m", "3", "--output-per-1m", "9",
                  "--cache-read-per-1m", "0.3", "--cache-write-per-1m", "4")  # fmt: skip
    workspace.run("models", "set", "cached/m", "--cache-read-per-1m", "none",
                  "--cache-write-per-1m", "NONE", "--input-per-1m", "5")  # fmt: skip
    (model,) = [m for m in workspace.json("models", "list") if m["id"] == "cached/m"]
    assert (model["cache_read_per_1m"], model["cache_write_per_1m"]) == (5, 5)
    assert model["cache_write_1h_per_1m"] == 5


def test_models_disable_and_enable(workspace: Workspace) -> None:
    workspace.run("providers", "add", "flip", "--kind", "anthropic", "--key", ANTHROPIC_KEY)
    workspace.run("models", "set", "flip/m", "--input-per-1m", "1", "--output-per-1m", "1")
    assert workspace.run("models", "disable", "flip/m").stdout == "model flip/m disabled\n"
    assert model(workspace, "flip/m")["enabled"] is False
    workspace.run("models", "enable", "flip/m")
    assert model(workspace, "flip/m")["enabled"] is True


def test_provider_keys_can_come_from_stdin(workspace: Workspace) -> None:
    from codelace_box.config import ensure_secret_key, load_config
    from codelace_box.crypto import decrypt_secret

    result = subprocess.run(
        [sys.executable, "-m", "codelace_box", "--config", str(workspace.config),
         "providers", "add", "piped", "--kind", "openai", "--key", "-"],
        input="sk-piped-key-0123456789\n", capture_output=True, text=True, env=cli_env(),
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert [k["hint"] for k in provider(workspace, "piped")["keys"]] == ["sk-…6789"]
    stored = workspace.sql(
        "SELECT key_encrypted FROM provider_key k JOIN provider p ON p.id = k.provider_id "
        "WHERE p.name = 'piped'"
    )
    secret = ensure_secret_key(load_config(str(workspace.config), {}))
    assert decrypt_secret(secret, bytes(stored[0][0])) == "sk-piped-key-0123456789"
    empty = subprocess.run(
        [sys.executable, "-m", "codelace_box", "--config", str(workspace.config),
         "providers", "key-add", "piped", "--key", "-"],
        input="\n", capture_output=True, text=True, env=cli_env(), check=False,
    )  # fmt: skip
    assert empty.returncode == 1 and "must not be empty" in empty.stderr


def test_a_key_typed_at_a_terminal_is_prompted_for_and_not_echoed(workspace: Workspace) -> None:
    """`--key -` run by hand: a prompt on the terminal, and the key typed is not shown."""
    master, slave = os.openpty()
    child = subprocess.Popen(
        [sys.executable, "-m", "codelace_box", "--config", str(workspace.config),
         "providers", "add", "typed", "--kind", "openai", "--key", "-"],
        stdin=slave, stdout=slave, stderr=slave, env=cli_env(), start_new_session=True,
    )  # fmt: skip
    os.close(slave)
    seen = b""
    try:
        deadline = time.monotonic() + 30
        while b"key" not in seen.lower() and time.monotonic() < deadline:
            if select.select([master], [], [], 0.1)[0]:
                seen += os.read(master, 4096)
        assert b"provider api key" in seen.lower(), seen
        os.write(master, b"sk-typed-key-0123456789\r")
        assert child.wait(30) == 0
        with contextlib.suppress(OSError):  # the terminal is gone once the child ended
            while select.select([master], [], [], 0.2)[0] and (chunk := os.read(master, 4096)):
                seen += chunk
    finally:
        if child.poll() is None:
            child.kill()
        os.close(master)
    assert b"sk-typed-key" not in seen
    assert [k["hint"] for k in provider(workspace, "typed")["keys"]] == ["sk-…6789"]


def test_providers_add_with_allowed_fields_and_update(workspace: Workspace) -> None:
    workspace.run(
        "providers", "add", "router", "--kind", "openai", "--key", OPENAI_KEY,
        "--allow-field", "plugins", "--allow-field", "models",
    )  # fmt: skip
    assert provider(workspace, "router")["allowed_fields"] == ["models", "plugins"]
    assert "models,plugins" in workspace.run("providers", "list").stdout
    out = workspace.run(
        "providers", "update", "router", "--no-allow-field", "models",
        "--allow-field", "service_tier", "--base-url", "http://127.0.0.1:9/api/v1/",
    ).stdout  # fmt: skip
    assert out == (
        "updated provider router (openai, http://127.0.0.1:9/api/v1; "
        "allowed fields: plugins, service_tier)\n"
    )
    router = provider(workspace, "router")
    assert router["allowed_fields"] == ["plugins", "service_tier"]
    assert router["base_url"] == "http://127.0.0.1:9/api/v1"
    workspace.run("providers", "update", "router", "--kind", "anthropic", "--base-url", "")
    router = provider(workspace, "router")
    assert (router["kind"], router["base_url"]) == ("anthropic", "https://api.anthropic.com")
    assert router["allowed_fields"] == ["plugins", "service_tier"], "kept unless given"
    assert [k["hint"] for k in router["keys"]] == ["sk-…0001"]


def test_providers_update_errors(workspace: Workspace) -> None:
    workspace.run("providers", "add", "strict", "--kind", "openai", "--key", OPENAI_KEY)
    assert "nothing to change" in workspace.fail("providers", "update", "strict", code=2)
    assert "no provider named ghost" in workspace.fail(
        "providers", "update", "ghost", "--allow-field", "models"
    )
    refused = workspace.fail("providers", "update", "strict", "--allow-field", "top_k")
    assert "cannot allow 'top_k'" in refused and "other fields pass anyway" in refused
    assert "cannot allow 'nope'" in workspace.fail(
        "providers", "add", "other", "--kind", "openai", "--key", OPENAI_KEY,
        "--allow-field", "nope",
    )  # fmt: skip
    assert "both allowed and not allowed: route" in workspace.fail(
        "providers", "update", "strict", "--allow-field", "route", "--no-allow-field", "route"
    )
    assert "base URL must start with http" in workspace.fail(
        "providers", "update", "strict", "--base-url", "ftp://x"
    )
    assert "'--kind'" in workspace.fail("providers", "update", "strict", "--kind", "x", code=2)
    strict = provider(workspace, "strict")
    assert (strict["allowed_fields"], strict["kind"]) == ([], "openai")
    assert "other" not in [p["name"] for p in workspace.json("providers", "list")]


def test_a_base_url_without_a_usable_host_is_refused(workspace: Workspace) -> None:
    """`--base-url http://`, a host with a space in it or a URL with a control character
    pasted in (an escape sequence) cannot be reached: a clear error now, not a provider whose
    every request fails later."""
    workspace.run("providers", "add", "kept", "--kind", "openai", "--key", OPENAI_KEY)
    for bad in ("http://", "https:///v1", "http://api example.com/v1", "http://host:99999/v1",
                "http://127.0.0.1:8000/v1\x1b[31m", "http://host/v1\x7f"):  # fmt: skip
        line = workspace.fail(
            "providers", "add", "bad", "--kind", "openai", "--base-url", bad, "--key", "k"
        )
        assert "base URL" in line and repr(bad) in line, line
        line = workspace.fail("providers", "update", "kept", "--base-url", bad)
        assert "base URL" in line and repr(bad) in line, line
    assert "bad" not in [p["name"] for p in workspace.json("providers", "list")]
    assert provider(workspace, "kept")["base_url"] == "https://api.openai.com/v1"
    workspace.run("providers", "update", "kept", "--base-url", "http://[::1]:8000/v1/")
    assert provider(workspace, "kept")["base_url"] == "http://[::1]:8000/v1"


def test_an_upstream_model_name_with_spaces_is_refused(workspace: Workspace) -> None:
    """The upstream name goes into every request's `model`: blank or spaced is a typo."""
    workspace.run("providers", "add", "up", "--kind", "openai", "--key", OPENAI_KEY)
    workspace.run("models", "set", "up/m", "--input-per-1m", "1", "--output-per-1m", "2")
    for bad in ("  ", "gpt 4o", " gpt-4o"):
        line = workspace.fail("models", "set", "up/m", "--upstream-model", bad)
        assert "upstream model name must have no spaces" in line, line
    (model,) = [m for m in workspace.json("models", "list") if m["id"] == "up/m"]
    assert model["upstream_model"] == "m"


def test_an_empty_provider_or_upstream_model_is_refused_not_ignored(workspace: Workspace) -> None:
    """`--provider ""` or `--upstream-model ""` (a script's unset variable) changed nothing
    and exited 0: the operator believed the model moved. Now a one-line refusal."""
    workspace.run("providers", "add", "blank", "--kind", "openai", "--key", OPENAI_KEY)
    workspace.run("providers", "add", "moved", "--kind", "openai", "--key", OPENAI_KEY)
    workspace.run("models", "set", "blank/m", "--input-per-1m", "1", "--output-per-1m", "2",
                  "--provider", "moved", "--upstream-model", "gpt-x")  # fmt: skip
    for option in ("--provider", "--upstream-model"):
        line = workspace.fail("models", "set", "blank/m", option, "")
        assert "must not be empty" in line and option.lstrip("-") in line, line
    (model,) = [m for m in workspace.json("models", "list") if m["id"] == "blank/m"]
    assert (model["provider"], model["upstream_model"]) == ("moved", "gpt-x")


def test_models_set_none_unsets_the_output_cap_and_the_context_window(
    workspace: Workspace,
) -> None:
    """Once set, an output cap or a context window can be taken off again (as the dashboard
    can, and as `keys update --limit-usd none` does); what is not named stays."""
    workspace.run("providers", "add", "cap", "--kind", "openai", "--key", OPENAI_KEY)
    workspace.run("models", "set", "cap/m", "--input-per-1m", "1", "--output-per-1m", "2",
                  "--max-output-tokens", "4096", "--context-tokens", "128000")  # fmt: skip
    workspace.run("models", "set", "cap/m", "--max-output-tokens", "none")
    (model,) = [m for m in workspace.json("models", "list") if m["id"] == "cap/m"]
    assert (model["max_output_tokens"], model["context_tokens"]) == (None, 128000)
    workspace.run("models", "set", "cap/m", "--context-tokens", "NONE", "--input-per-1m", "3")
    (model,) = [m for m in workspace.json("models", "list") if m["id"] == "cap/m"]
    assert (model["max_output_tokens"], model["context_tokens"]) == (None, None)
    assert (model["input_per_1m"], model["output_per_1m"]) == (3, 2)
    assert "'--context-tokens'" in workspace.fail("models", "set", "cap/m", "--context-tokens",
                                                  "nothing", code=2)  # fmt: skip


def test_a_base_url_with_credentials_a_query_or_a_fragment_is_refused(
    workspace: Workspace,
) -> None:
    """A password in the URL (`https://user:pw@host/v1`) would be printed by `providers list`
    and written to the audit log, and aiohttp refuses to send it beside the key's own
    Authorization header (every request a 500); a query or fragment would end up in front of
    the `/chat/completions` appended to it. All are refused, without echoing the password."""
    workspace.run("providers", "add", "kept2", "--kind", "openai", "--key", OPENAI_KEY)
    for bad in (
        "http://user:pw-s3cret@127.0.0.1:9/v1",
        "https://only-a-user-s3cret@api.example.com/v1",
        "https://api.example.com/v1?api-version=2024-10-21",
        "https://api.example.com/v1#s3cret",
    ):
        line = workspace.fail(
            "providers", "add", "bad", "--kind", "openai", "--base-url", bad, "--key", "k"
        )
        assert "base URL" in line and "s3cret" not in line, line
        line = workspace.fail("providers", "update", "kept2", "--base-url", bad)
        assert "base URL" in line and "s3cret" not in line, line
    assert "bad" not in [p["name"] for p in workspace.json("providers", "list")]
    assert provider(workspace, "kept2")["base_url"] == "https://api.openai.com/v1"
    assert "s3cret" not in workspace.run("audit", "--json").stdout


def test_allow_field_help_names_every_field_that_can_be_allowed(workspace: Workspace) -> None:
    """The Claude Code setup needs `--allow-field context-1m`: `--help` names it and every
    other field the box refuses without the operator's leave (the one list in the code)."""
    from codelace_box.providers.billed_fields import BILLED_FIELDS

    for command in ("add", "update"):
        shown = " ".join(workspace.run("providers", command, "--help").stdout.split())
        words = set(re.findall(r"[\w-]+", shown))
        missing = [f for f in BILLED_FIELDS if f not in words]
        assert not missing, (command, missing)


def test_allow_field_takes_the_beta_flag_and_dated_tool_names_as_sent(
    workspace: Workspace,
) -> None:
    """The SPEC names the long-context betas `context-1m-*` and a request carries one as
    `anthropic-beta: context-1m-2025-08-07`, a server tool as type `web_search_20250305`; an
    operator who allowed them under those names got "cannot allow 'context-1m-2025-08-07'".
    They are stored as the field they belong to (context-1m, web_search), added and removed."""
    workspace.run(
        "providers", "add", "anth-beta", "--kind", "anthropic", "--key", ANTHROPIC_KEY,
        "--allow-field", "context-1m-*", "--allow-field", "web_search_20250305",
    )  # fmt: skip
    assert provider(workspace, "anth-beta")["allowed_fields"] == ["context-1m", "web_search"]
    workspace.run(
        "providers", "update", "anth-beta", "--no-allow-field", "context-1m-2025-08-07",
        "--allow-field", "code_execution_20250825", "--allow-field", "web_search_options",
    )  # fmt: skip
    shown = provider(workspace, "anth-beta")["allowed_fields"]
    assert shown == ["code_execution", "web_search", "web_search_options"]
    for bad in ("context-2m-2025-08-07", "web_search_latest", "web_search_2025"):
        assert "cannot allow" in workspace.fail("providers", "update", "anth-beta",
                                                "--allow-field", bad)  # fmt: skip


def test_an_anthropic_base_url_ending_in_v1_is_warned_about(workspace: Workspace) -> None:
    """The box appends /v1/messages to an anthropic provider's base URL (as Anthropic's SDK and
    Claude Code do), so `https://api.anthropic.com/v1`, written as an openai one would be, made
    every call go to /v1/v1/messages: a 404 on first use, nothing said when it was added."""
    added = workspace.run(
        "providers", "add", "anth", "--kind", "anthropic",
        "--base-url", "http://127.0.0.1:9/v1/", "--key", ANTHROPIC_KEY,
    )  # fmt: skip
    assert added.stdout == "added provider anth (anthropic)\n"
    assert added.stderr == (
        "warning: the box appends /v1/messages to an anthropic provider's base URL, so calls "
        "will go to http://127.0.0.1:9/v1/v1/messages: leave /v1 out (http://127.0.0.1:9)\n"
    )
    updated = workspace.run("providers", "update", "anth", "--base-url", "http://127.0.0.1:9")
    assert updated.stderr == ""
    moved = workspace.run("providers", "update", "anth", "--base-url", "http://h.test/x/v1")
    assert "calls will go to http://h.test/x/v1/v1/messages" in " ".join(moved.stderr.split())
    plain = workspace.run(
        "providers", "add", "oai", "--kind", "openai",
        "--base-url", "http://127.0.0.1:9/v1", "--key", OPENAI_KEY,
    )  # fmt: skip
    assert plain.stderr == ""
    switched = workspace.run("providers", "update", "oai", "--kind", "anthropic")
    assert "/v1/v1/messages" in switched.stderr


def test_a_base_url_in_capitals_is_taken_with_scheme_and_host_in_lower_case(
    workspace: Workspace,
) -> None:
    """URL schemes and hosts are case-insensitive (RFC 3986, 3.1 and 3.2.2): `HTTP://` is
    `http://`; the path is kept as written (it may be case-sensitive)."""
    workspace.run(
        "providers", "add", "loud", "--kind", "openai",
        "--base-url", "HTTP://LocalHost:9/V1/", "--key", OPENAI_KEY,
    )  # fmt: skip
    assert provider(workspace, "loud")["base_url"] == "http://localhost:9/V1"
    workspace.run("providers", "update", "loud", "--base-url", "HTTPS://API.Example.COM/Api")
    assert provider(workspace, "loud")["base_url"] == "https://api.example.com/Api"


def test_models_set_with_nothing_to_set_is_a_usage_error_and_writes_no_audit_entry(
    workspace: Workspace,
) -> None:
    workspace.run("providers", "add", "quiet", "--kind", "openai", "--key", OPENAI_KEY)
    workspace.run("models", "set", "quiet/m", "--input-per-1m", "1", "--output-per-1m", "2")
    before = workspace.json("audit")
    for model_id in ("quiet/m", "quiet/new"):  # an existing model and a new one
        message = workspace.fail("models", "set", model_id, code=2)
        assert "--input-per-1m" in message and "--cache-write-1h-per-1m" in message, message
    assert "nothing to change" in workspace.fail("providers", "update", "quiet", code=2)
    assert workspace.json("audit") == before
    assert "quiet/new" not in [m["id"] for m in workspace.json("models", "list")]
