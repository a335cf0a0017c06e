"""The references in the repository cannot drift from the product: the route table of
docs/http-api.md is what the server serves, and the README's "Command line" table names only
commands and options that exist, and every command."""

from __future__ import annotations

import re
from functools import cache

import click
from sanic import Sanic

from codelace_box.cli.main import main as cli
from codelace_box.config import Config
from codelace_box.server import create_app
from tests.support import REPO_ROOT

HTTP_REFERENCE = REPO_ROOT / "docs" / "http-api.md"
ROUTE_ROW = re.compile(r"^\| (GET|POST|PUT|PATCH|DELETE) \| `(/[^`]*)` \|", re.M)
PARAMETER = re.compile(r"<([a-z_]+)(?::[a-z]+)?>")


def documented_routes() -> set[tuple[str, str]]:
    return set(ROUTE_ROW.findall(HTTP_REFERENCE.read_text()))


@cache
def app() -> Sanic:
    return create_app(Config())


def served_routes() -> set[tuple[str, str]]:
    """(method, path) of every route of the app, parameters written `{name}`; HEAD and the
    CORS preflights (OPTIONS, documented once in their own section) aside."""
    served = set()
    for route in app().router.routes:
        path = "/" + PARAMETER.sub(r"{\1}", route.path)
        served |= {(m, path) for m in route.methods if m not in ("HEAD", "OPTIONS")}
    return served


def test_the_http_reference_lists_every_route_the_server_serves_and_no_other() -> None:
    documented = documented_routes()
    assert len(documented) >= 15  # the table parsed, not an empty match
    served = served_routes()
    assert documented == served, (
        f"served but not in docs/http-api.md: {sorted(served - documented)}; "
        f"documented but not served: {sorted(documented - served)}"
    )


def test_every_read_only_route_also_answers_head_as_documented() -> None:
    routes = app().router.routes
    assert [route.path for route in routes if "GET" in route.methods]
    for route in routes:
        if "GET" in route.methods:
            assert "HEAD" in route.methods, route.path


def command_table() -> list[list[str]]:
    """The backticked command forms of each row of the README's "Command line" table."""
    text = (REPO_ROOT / "README.md").read_text()
    section = text.split("\n## Command line\n", 1)[1].split("\n## ", 1)[0]
    return [
        re.findall(r"`([^`]+)`", re.split(r"(?<!\\)\|", line)[1])
        for line in section.splitlines()
        if line.startswith("| `")
    ]


def documented_commands() -> dict[tuple[str, ...], set[str]]:
    """Each documented command path, e.g. ('users', 'list'), with the options written for it."""
    found: dict[tuple[str, ...], set[str]] = {}
    for forms in command_table():
        group: str | None = None
        for form in forms:
            words = form.split()
            if words[0] in cli.commands:
                group = words[0] if isinstance(cli.commands[words[0]], click.Group) else None
                path = (words[0], words[1]) if group else (words[0],)
            else:
                assert group, f"{form!r}: not a command of codelace-box"
                path = (group, words[0])
            found.setdefault(path, set()).update(re.findall(r"--[a-z0-9-]+", form))
    return found


def real_commands() -> dict[tuple[str, ...], click.Command]:
    commands: dict[tuple[str, ...], click.Command] = {}
    for name, command in cli.commands.items():
        if isinstance(command, click.Group):
            commands |= {(name, sub): c for sub, c in command.commands.items()}
        else:
            commands[(name,)] = command
    return commands


def test_the_command_table_names_every_command_and_only_real_ones() -> None:
    documented, real = documented_commands(), real_commands()
    assert len(documented) >= 20  # the table parsed, not an empty match
    assert set(documented) == set(real), (
        f"not in the README's table: {sorted(set(real) - set(documented))}; "
        f"in the table but not commands: {sorted(set(documented) - set(real))}"
    )


def test_every_option_in_the_command_table_exists() -> None:
    real = real_commands()
    for path, options in documented_commands().items():
        params = real[path].params  # a flag's --no- side is among its secondary_opts
        known = {opt for param in params for opt in [*param.opts, *param.secondary_opts]}
        assert options <= known, f"{' '.join(path)}: no such option {sorted(options - known)}"


def test_every_option_of_every_command_is_in_the_command_table() -> None:
    """The table is the reference of the command line: an option missing from it is one a reader
    never learns of (`--json` of the `list` and `show` commands aside, which the sentence above
    the table covers)."""
    documented = documented_commands()
    for path, command in real_commands().items():
        options = {
            opt
            for param in command.params
            if isinstance(param, click.Option)
            for opt in [*param.opts, *param.secondary_opts]
            if opt.startswith("--") and opt != "--help"
        }
        if path[-1] in ("list", "show"):
            options.discard("--json")
        missing = options - documented[path]
        assert not missing, f"{' '.join(path)}: {sorted(missing)} not in the README's table"


def test_models_set_help_says_what_an_unset_output_cap_is() -> None:
    """`--max-output-tokens none` said 'no cap', but a model without one is held to, and sends
    the provider, the gateway's default cap, as the README's billing section says."""
    from codelace_box.gateway.metering import DEFAULT_MAX_OUTPUT_TOKENS

    (option,) = [
        p for p in real_commands()[("models", "set")].params if p.name == "max_output_tokens"
    ]
    assert isinstance(option, click.Option) and option.help
    assert f"{DEFAULT_MAX_OUTPUT_TOKENS:,}" in option.help and "no cap" not in option.help
    readme = " ".join((REPO_ROOT / "README.md").read_text().split())
    assert f"else {DEFAULT_MAX_OUTPUT_TOKENS:,}" in readme
