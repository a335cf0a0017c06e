"""The references in the repository cannot drift from the product: the route table of
docs/http-api.md is what the server serves, and the README's "Command line" table names only
commands and options that exist, and every command; the Stripe events it says to subscribe
to are those billing acts on."""

from __future__ import annotations

import re
import shlex
import warnings
from decimal import Decimal
from functools import cache

import click
from sanic import Sanic
from textual.binding import Binding

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


def test_update_commands_help_names_no_default_for_what_they_leave_unchanged() -> None:
    """`keys update --help` said of --manage-keys '(default: it may ...)', shared with `keys
    create`: an operator renaming a tool's key could read that leaving the flag out gives the
    key back the right to manage keys, while an update changes only what is given."""
    checked = 0
    for path, command in real_commands().items():
        if path[-1] != "update":
            continue
        for param in command.params:
            if isinstance(param, click.Option) and param.help and param.name != "json":
                assert "default" not in param.help.lower(), f"{' '.join(path)} {param.opts[0]}"
                checked += 1
    assert checked >= 6


DOCS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]


def headings(text: str) -> list[str]:
    return re.findall(r"^#+ (.+)$", re.sub(r"```.*?```", "", text, flags=re.S), re.M)


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_link_between_the_docs_names_a_file_and_a_heading_that_exist() -> None:
    checked = 0
    for doc in DOCS:
        for link in re.findall(r"\]\(([^)\s]+)\)", doc.read_text()):
            if link.startswith(("http://", "https://", "mailto:")):
                continue
            path, _, fragment = link.partition("#")
            target = (doc.parent / path) if path else doc
            assert target.exists(), f"{doc.name}: link to {link}: no such file"
            if fragment and target.suffix == ".md":
                found = {anchor(h) for h in headings(target.read_text())}
                assert fragment in found, f"{doc.name}: link to {link}: no such heading"
            checked += 1
    assert checked >= 3


SENT_TO = (
    re.compile(r'see "([^"]+)"'),
    # unquoted, as `(see Budgets and limits)`: the README's audit list sent readers to a
    # "Stripe" section that is "Buying credit (Stripe)"
    re.compile(r"\bsee ([A-Z][A-Za-z ]+?)(?=[;,.)]| above| below)"),
)


def test_every_section_the_docs_send_a_reader_to_exists() -> None:
    """`see "Running several boxes"` or `see Budgets and limits`: a heading of the README or
    of the doc itself (its start will do), or a bold lead-in (`**Slow clients.**`) of that
    doc."""
    readme = REPO_ROOT / "README.md"
    checked = 0
    for doc in DOCS:
        text = doc.read_text()
        names = headings(text) + headings(readme.read_text())
        names += re.findall(r"\*\*([^*]+?)\.?\*\*", text)
        for pattern in SENT_TO:
            for section in pattern.findall(" ".join(text.split())):
                assert any(name.startswith(section) for name in names), f"{doc.name}: {section!r}"
                checked += 1
    assert checked >= 10


REPO_PATH = re.compile(r"`((?:codelace_box|admin_tui|tests|docs|build|bench|\.ci)/[\w./*-]*)`")


def test_every_file_of_the_repository_the_docs_name_exists() -> None:
    named = {path for doc in DOCS for path in REPO_PATH.findall(doc.read_text())}
    assert len(named) >= 10
    missing = [path for path in sorted(named) if not list(REPO_ROOT.glob(path.rstrip("/")))]
    assert not missing, f"named in the docs, not in the repository: {missing}"


def documented_command_lines() -> list[str]:
    """The `codelace-box ...` lines of the docs' shell examples, as an operator types them:
    after `sudo -u codelace`, a `cd ... &&` or a pipe; `$(...)` and comments dropped."""
    lines = []
    for doc in DOCS:
        for block in re.findall(r"```sh\n(.*?)```", doc.read_text(), re.S):
            for raw in block.replace("\\\n", " ").splitlines():
                line = re.sub(r"\$\([^)]*\)", "X", raw.split(" #")[0])
                for part in re.split(r"&&|\|", line):
                    words = part.split()
                    if words[:3] == ["sudo", "-u", "codelace"]:
                        words = words[3:]
                    if words[:1] == ["codelace-box"]:
                        lines.append(" ".join(words))
    return lines


def parse_command_line(line: str) -> None:
    """Parses `line` as click would run it, down to its command's own options; runs nothing."""
    context = cli.make_context("codelace-box", shlex.split(line)[1:])
    while isinstance(context.command, click.Group):
        with warnings.catch_warnings():  # Click 9 moves protected_args into args
            warnings.simplefilter("ignore", DeprecationWarning)
            words = [*context.protected_args, *context.args]
        name, command, rest = context.command.resolve_command(context, words)
        assert command and name, line
        context = command.make_context(name, rest, parent=context)


def test_every_command_line_of_the_docs_examples_parses() -> None:
    """The walkthroughs (First run, Daily tasks, Budgets, Backups, Upgrading, ...) name real
    commands with real options, beyond the table's."""
    lines = documented_command_lines()
    assert len(lines) >= 30
    for line in lines:
        try:
            parse_command_line(line)
        except click.ClickException as error:
            raise AssertionError(f"{line!r}: {error.format_message()}") from None


def dashboard_rows() -> dict[str, str]:
    """The README's table of the dashboard's screens: F-key -> what its row says."""
    text = (REPO_ROOT / "README.md").read_text()
    return dict(re.findall(r"^\| (F[1-6]) \| [^|]+ \| (.+) \|$", text, re.M))


def test_the_dashboard_table_names_every_letter_key_of_each_screen() -> None:
    """A key a screen binds but the README's table leaves out is an action an operator never
    finds without pressing `?`."""
    from admin_tui.screens import (
        activity,
        audit,
        dashboard,
        models,
        providers,
        request_detail,
        spend,
        user_detail,
        users,
    )

    screens = {
        "F1": [dashboard.DashboardScreen],
        "F2": [users.UsersScreen, user_detail.UserDetailScreen],
        "F3": [models.ModelsScreen],
        "F4": [providers.ProvidersScreen],
        "F5": [activity.ActivityScreen, request_detail.RequestDetailScreen, spend.SpendScreen],
        "F6": [audit.AuditScreen],
    }
    rows = dashboard_rows()
    assert set(rows) == set(screens)
    for fkey, classes in screens.items():
        keys = [
            binding.key if isinstance(binding, Binding) else binding[0]
            for screen in classes
            for binding in screen.BINDINGS
        ]
        bound = {key for key in keys if len(key) == 1}
        missing = {key for key in bound if f"`{key}`" not in rows[fkey]}
        assert not missing, f"{fkey}: keys {sorted(missing)} not in the README's table"


def test_where_things_are_names_every_package_of_the_product() -> None:
    text = (REPO_ROOT / "README.md").read_text()
    section = text.split("\n## Where things are\n", 1)[1].split("\n## ", 1)[0]
    packages = sorted(p.parent for p in (REPO_ROOT / "codelace_box").glob("*/__init__.py"))
    assert len(packages) >= 10
    missing = [p.name for p in packages if f"`codelace_box/{p.name}/`" not in section]
    assert not missing, f"packages not in the README's 'Where things are': {missing}"


QUOTED_DEFAULT = re.compile(
    r"`([a-z_]+)\.([a-z_0-9]+)`[^`(]{0,40}?\((?:default )?([0-9][0-9,.]*)(?: (s|MiB)\b)?"
)


def test_the_defaults_the_readme_quotes_beside_a_key_are_the_defaults() -> None:
    """`gateway.key_probe_sec` (300 s), `stripe.min_topup_usd` (default 10, ...): the prose
    quotes defaults beside their keys, which docs/configuration.md's test does not read."""
    config = Config()
    text = " ".join((REPO_ROOT / "README.md").read_text().split())
    checked = 0
    for section, key, number, unit in QUOTED_DEFAULT.findall(text):
        actual = getattr(getattr(config, section, None), key, None)
        if actual is None:
            continue
        quoted = Decimal(number.replace(",", "").rstrip(".")) * (2**20 if unit == "MiB" else 1)
        assert quoted == Decimal(str(actual)), f"README: {section}.{key} ({number} {unit})"
        checked += 1
    assert checked >= 5


STRIPE_EVENT = re.compile(r"`((?:checkout\.session|refund|charge)\.[a-z_.]+)`")


def test_the_stripe_events_the_readme_says_to_send_are_those_the_box_handles() -> None:
    """The README's webhook endpoint list omitted `charge.refund.updated` and
    `charge.dispute.funds_reinstated`, both handled (billing/reversals.py): an operator who
    subscribed to the list as written never heard of a refund's later change, nor of the funds
    of a won dispute given back. The list is the set of events billing acts on, no more."""
    from codelace_box.billing.webhooks import HANDLED_TYPES, REVERSAL_EVENTS

    text = " ".join((REPO_ROOT / "README.md").read_text().split())
    paragraph = text.split("add a webhook endpoint", 1)[1].split("copy its signing secret", 1)[0]
    documented = set(STRIPE_EVENT.findall(paragraph))
    handled = set(HANDLED_TYPES | REVERSAL_EVENTS)
    assert documented == handled, (
        f"handled but not in the README's list: {sorted(handled - documented)}; "
        f"listed but not handled: {sorted(documented - handled)}"
    )


def test_the_413_row_names_the_routes_that_read_big_bodies_and_the_small_limit() -> None:
    """docs/http-api.md said only routes without an API key read at most 256 KiB, and that
    headers past `server.max_body_bytes` got 413: every route but the inference ones reads at
    most 256 KiB (a key's settings with a valid key too: api/bodies.py), and Sanic's 8 KiB
    bounds the headers. The row names the routes read up to the configured limit."""
    from sanic.config import DEFAULT_CONFIG

    from codelace_box.api.bodies import KEYED_ROUTES, SMALL_BODY_BYTES, WEBHOOK_BODY_BYTES

    row = next(
        line for line in HTTP_REFERENCE.read_text().splitlines() if line.startswith("  | 413 |")
    )
    documented = set(re.findall(r"`/(v1/[a-z_/{}]+)`", row))
    stored = "v1/responses/{response_id}"  # its sub-routes named after it: `/cancel`
    documented |= {stored + sub for sub in re.findall(r"its `(/[a-z_]+)` and `(/[a-z_]+)`", row)[0]}
    keyed = {path.replace("<", "{").replace(":str>", "}") for path in KEYED_ROUTES}
    assert documented == keyed, row
    assert f"{SMALL_BODY_BYTES // 1024} KiB" in row
    assert f"webhook larger than {WEBHOOK_BODY_BYTES // 1024 // 1024} MiB" in row
    assert f"{DEFAULT_CONFIG['REQUEST_MAX_HEADER_SIZE'] // 1024} KiB" in row


def test_the_413_row_says_a_declared_oversized_body_is_a_413_before_the_key() -> None:
    """The row said "a missing or wrong key is a 401 whatever the body", but a body whose
    Content-Length already declares more than `server.max_body_bytes` is a 413 before the key
    is looked at, nothing read (api/bodies.py `before_the_body`; a client without a key sending
    11 MB got the 413, tests/foundation/test_unread_bodies.py sees both statuses)."""
    row = next(
        line for line in HTTP_REFERENCE.read_text().splitlines() if line.startswith("  | 413 |")
    )
    assert "whatever the body)" not in row, row
    assert "`Content-Length`" in row and "before the key" in row, row


def test_the_hosted_tools_the_box_drops_are_named_where_the_docs_list_the_refusals() -> None:
    """docs/http-api.md said only `web_search` was dropped from a Responses request, natively
    and translated, and every other hosted tool type refused: Codex's `tool_search` is
    dropped too (providers/responses_tools.py), as the README said. Each dropped type is named
    in both documents' Responses API sections."""
    from codelace_box.providers.responses_tools import IGNORED_TOOL_TYPES

    sections = {
        "docs/http-api.md": HTTP_REFERENCE.read_text().split("## Responses API", 1)[1],
        "README.md": (REPO_ROOT / "README.md").read_text().split("\n## Responses API", 1)[1],
    }
    for name, text in sections.items():
        section = " ".join(text.split("\n## ", 1)[0].split())
        refused = section.split("hosted tool types", 1)[1][:200]
        missing = [kind for kind in IGNORED_TOOL_TYPES if f"`{kind}`" not in refused]
        assert not missing, f"{name}: dropped tool types not named beside the refused: {missing}"


ANTHROPIC_TYPE_OF = re.compile(r"(\d{3}(?:/\d{3})*) `([a-z_]+_error|request_too_large)`")


def messages_errors_paragraphs() -> dict[str, str]:
    """The paragraphs on the Messages routes' errors, of docs/http-api.md and the README."""
    http = " ".join(HTTP_REFERENCE.read_text().split())
    readme = " ".join((REPO_ROOT / "README.md").read_text().split())
    return {
        "docs/http-api.md": http.split("- Errors on both routes are", 1)[1].split("## ", 1)[0],
        "README.md": readme.split("- **Errors** on these two routes", 1)[1].split("- **Auto", 1)[0],
    }


def test_the_messages_error_types_and_final_statuses_are_those_the_box_answers() -> None:
    """Each status's Anthropic error type that the docs list for /v1/messages is the one
    api/errors.py answers with (gateway/dialects.py), and the statuses said to carry
    `x-should-retry: false` are FINAL_STATUSES, with every 503 code named that says it too:
    Claude Code stops or retries by them, so a changed mapping left in the docs misleads an
    operator reading why a session retried."""
    from codelace_box.api.errors import FINAL_CODES, FINAL_STATUSES
    from codelace_box.gateway.dialects import anthropic_error_type

    for name, paragraph in messages_errors_paragraphs().items():
        pairs = ANTHROPIC_TYPE_OF.findall(paragraph)
        assert len(pairs) >= 12, (name, pairs)
        for statuses, kind in pairs:
            for status in statuses.split("/"):
                if kind != "api_error" or int(status) != 503:  # the final 503s, below
                    assert anthropic_error_type(int(status)) == kind, (name, status, kind)
        listed = re.search(r"\((?:as are )?((?:\d{3},? (?:and )?)+\d{3})", paragraph)
        assert listed, name
        assert set(map(int, re.findall(r"\d{3}", listed.group(1)))) == FINAL_STATUSES, name
        missing = [code for code in FINAL_CODES if f"`{code}`" not in paragraph]
        if name == "docs/http-api.md":
            assert not missing, f"{name}: final 503 codes not named: {missing}"


def test_the_list_limits_the_route_table_states_are_those_the_routes_take() -> None:
    """`?limit=N` of the usage, payments and Anthropic-shaped model lists: the range and
    default each route row states are the constants the handlers read with."""
    from codelace_box.api.customer import DEFAULT_USAGE_LIMIT, MAX_USAGE_LIMIT
    from codelace_box.api.public import MAX_PAGE
    from codelace_box.billing.payments import DEFAULT_LIMIT, MAX_LIMIT

    rows = {path: line for line in HTTP_REFERENCE.read_text().splitlines()
            if (match := ROUTE_ROW.match(line)) and (path := match.group(2))}  # fmt: skip
    dash = "\u2013"  # the table's en dash
    expected = {
        "/api/v1/customer/usage": f"1{dash}{MAX_USAGE_LIMIT}, default {DEFAULT_USAGE_LIMIT})",
        "/api/v1/customer/payment": f"1{dash}{MAX_LIMIT}, default {DEFAULT_LIMIT})",
        "/v1/models": f"paged by `limit` (1-{MAX_PAGE}, default {MAX_PAGE}: the whole list)",
    }
    for path, stated in expected.items():
        assert stated in rows[path], f"docs/http-api.md, {path}: expected {stated!r}"
