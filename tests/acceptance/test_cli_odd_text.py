"""The command line given text beyond ASCII, as an operator's terminal hands it over: bytes
that are no UTF-8 (a Latin-1 terminal, a pasted binary), and names in wide scripts, emoji and
combining accents, shown back in the plain tables."""

from __future__ import annotations

import subprocess
import unicodedata

import pytest

from tests.acceptance.cli_tools import Box, error_line
from tests.support import PROGRAM, cli_env

pytestmark = pytest.mark.timeout(120)

NOT_UTF8 = "caf\udce9"  # b"caf\xe9": 'café' typed in Latin-1; Python's argv holds \udce9


@pytest.mark.parametrize(
    "args",
    [
        ("keys", "create", "odd@text.test", "--name", NOT_UTF8),
        ("credit", "odd@text.test", "1", "--reason", NOT_UTF8),
        ("providers", "add", NOT_UTF8, "--kind", "openai", "--key", "sk-odd-text-0001"),
        ("models", "set", f"odd/{NOT_UTF8}", "--input-per-1m", "1", "--output-per-1m", "1"),
        ("models", "alias", NOT_UTF8, "odd/m"),
        ("models", "set", "odd/m", "--upstream-model", NOT_UTF8, "--input-per-1m", "1"),
    ],
    ids=["key-name", "reason", "provider", "model", "alias", "upstream-model"],
)
def test_an_argument_that_is_not_utf8_is_refused_saying_so_and_changes_nothing(
    space: Box, args: tuple[str, ...]
) -> None:
    """Such an argument reached the database, which takes only Unicode text: the operator got
    'unexpected UnicodeEncodeError: ... surrogates not allowed', the wording of a bug."""
    if not space.sql("SELECT 1 FROM user WHERE email = 'odd@text.test'"):
        space.ok("users", "create", "odd@text.test")
    before = space.sql("SELECT count(*) FROM audit_log")
    line = space.fail(*args)
    assert "unexpected" not in line and "surrogate" not in line, line
    assert "UTF-8" in line and "caf\\xe9" in line, line
    assert space.sql("SELECT count(*) FROM audit_log") == before


def display_width(text: str) -> int:
    """Columns a terminal gives text: two for wide and full-width, none for combining marks."""
    return sum(
        0 if unicodedata.combining(c) or unicodedata.category(c) in ("Mn", "Me", "Cf")
        else 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1
        for c in text
    )  # fmt: skip


def test_plain_tables_line_up_names_in_wide_scripts_emoji_and_combining_accents(
    space: Box,
) -> None:
    """The columns after a key's name started where len() said, so a name in CJK or with an
    emoji pushed the rest of its row right, and one with combining accents pulled it left."""
    space.ok("users", "create", "wide@text.test")
    for name in ("世界の鍵", "party 🎉🎉", "cafe\u0301 cre\u0300me", "plain"):
        space.ok("keys", "create", "wide@text.test", "--name", name)
    lines = space.ok("keys", "list", "wide@text.test").splitlines()
    starts = {display_width(line[: line.index(" -  ")]) for line in lines[1:]}
    header = lines[0]
    assert starts == {display_width(header[: header.index("LAST_USED_AT")]) - 1}, lines


@pytest.mark.parametrize(
    "search", ["bücher", "BÜCHER.de", "zoe@bücher", "ｂüｃｈｅｒ", "bu\u0308cher", "xn--bcher-kva"]
)
def test_users_are_found_by_an_international_domain_as_the_operator_types_it(
    space: Box, search: str
) -> None:
    """An address at bücher.de is kept as xn--bcher-kva.de (as mail servers take it), and
    `users list --search bücher` found nothing: only the punycode form matched."""
    if not space.sql("SELECT 1 FROM user WHERE email = 'zoe@xn--bcher-kva.de'"):
        space.ok("users", "create", "Zoe@Bücher.de")
        space.ok("users", "create", "zoe@buecher.de")
    found = [u["email"] for u in space.json("users", "list", "--search", search)]
    assert found == ["zoe@xn--bcher-kva.de"]


def test_an_international_domain_is_shown_in_unicode_and_kept_ascii_in_json(space: Box) -> None:
    """`users list` and `users show` printed xn--bcher-kva.de for an address at bücher.de: the
    form mail servers take, not the one the operator knows. Tables show Unicode now; --json
    keeps the stored form, and the address works as either."""
    if not space.sql("SELECT 1 FROM user WHERE email = 'ida@xn--bcher-kva.de'"):
        space.ok("users", "create", "Ida@Bücher.de")
    listed = space.ok("users", "list", "--search", "ida@")
    assert "ida@bücher.de" in listed and "xn--" not in listed
    shown = space.ok("users", "show", "ida@xn--bcher-kva.de")
    assert "email: ida@bücher.de\n" in shown and "xn--" not in shown
    assert [u["email"] for u in space.json("users", "list", "--search", "ida@")] == [
        "ida@xn--bcher-kva.de"
    ]
    assert space.json("users", "show", "ida@bücher.de")["email"] == "ida@xn--bcher-kva.de"


def test_a_search_longer_than_any_address_finds_nothing_without_an_error(space: Box) -> None:
    """`users list --search` with a pasted text of 60,000 characters (SQLite's LIKE takes at
    most 50,000) said 'unexpected OperationalError: LIKE or GLOB pattern too complex'. No
    address is longer than 254 characters, so such a search finds nothing, and says so."""
    if not space.sql("SELECT 1 FROM user WHERE email = 'long@search.test'"):
        space.ok("users", "create", "long@search.test")
    assert space.json("users", "list", "--search", "long@" + "a" * 60_000) == []
    assert space.json("users", "list", "--search", "long@search.test") != []


def test_a_terminal_that_cannot_show_some_text_gets_replacements_not_a_crash(space: Box) -> None:
    """Under a Latin-1 locale (PYTHONIOENCODING shows the same) `providers list` failed "error:
    unexpected UnicodeEncodeError" (its key hints hold `…`), and so did an error naming such
    text: what the terminal's encoding cannot show is replaced now, on stdout and stderr."""
    space.ok("providers", "add", "latin", "--kind", "openai", "--key", "sk-latin-text-0123456789")
    listed = _latin1_cli(space, "providers", "list")
    assert listed.returncode == 0, listed.stderr
    assert "unexpected" not in listed.stderr and "latin" in listed.stdout, listed
    assert "sk-?6789" in listed.stdout, listed.stdout
    missing = _latin1_cli(space, "users", "show", "世界@text.test")
    assert missing.returncode == 1 and "unexpected" not in missing.stderr, missing
    assert "@text.test" in missing.stderr, missing.stderr


def _latin1_cli(space: Box, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI run as from a terminal whose encoding is Latin-1, its output read as such."""
    return subprocess.run(
        [*PROGRAM, "--config", str(space.config), *args],
        capture_output=True,
        env=cli_env({"PYTHONIOENCODING": "latin-1"}),
        encoding="latin-1",
        timeout=60,
        check=False,
    )


def test_bad_free_text_options_are_usage_errors_as_bad_amounts_are(space: Box) -> None:
    """`credit ... --reason $'a\\nb'` exited 1 while a bad amount exits 2 (click's usage error):
    a reason or key name the box refuses is a bad option value, refused before anything runs."""
    space.ok("users", "create", "usage@text.test")
    space.ok("keys", "create", "usage@text.test", "--name", "kept")
    key_id = space.json("keys", "list", "usage@text.test")[0]["id"]
    before = space.sql("SELECT count(*) FROM audit_log")
    cases = {
        ("credit", "usage@text.test", "1", "--reason", "a\nb"): "line breaks",
        ("credit", "usage@text.test", "1", "--reason", " "): "needs a reason",
        ("credit", "usage@text.test", "1", "--reason", "r" * 1001): "at most 1000",
        ("keys", "create", "usage@text.test", "--name", "a\rb"): "line breaks",
        ("keys", "update", key_id, "--name", "a\x07b"): "control characters",
    }
    for args, words in cases.items():
        result = space.cli(*args)
        assert result.returncode == 2, (args, result.returncode, result.stderr)
        line = error_line(result)
        assert words in line and "Invalid value for '--" in line, line
    assert space.sql("SELECT count(*) FROM audit_log") == before
