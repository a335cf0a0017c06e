"""A config file TOML refuses is said in plain words: the file, the line, the key where there
is one, what to write instead, and the TOML parser's own words after them (its "Cannot
overwrite a value" named neither the key nor what was wrong with it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from codelace_box.config import load_config
from codelace_box.errors import ConfigError

# (the file, what the one line says after "PATH: not valid TOML ")
TYPOS = [
    ("[server]\nhost = \"127.0.0.1\"\nport = 8080\nport = 9090\n",
     "at line 4, column 12: server.port is set twice (a key is set once in its section) "
     "(TOML parser: Cannot overwrite a value)"),
    ("[server]\nport = 8080\n\n[auth]\nsignup = \"open\"\n\n[server]\nhost = \"::1\"\n",
     "at line 7, column 8: [server] is declared twice (a [server], or keys under server, "
     "came before: put them all under one [server]) (TOML parser: Cannot declare ('server',) "
     "twice)"),
    ("[server]\nport.x = 1\n[server.port]\n",
     "at line 3, column 13: [server.port] is declared twice (a [server.port], or keys under "
     "server.port, came before: put them all under one [server.port]) (TOML parser: Cannot "
     "declare ('server', 'port') twice)"),
    ("[server]\nport = 8080\n[server.port]\n",
     "at line 3, column 13: [server.port] names server.port, set above: one of the two must "
     "go (TOML parser: Cannot overwrite a value)"),
    ("[server]  # the listener\nhost = \"::1\"\n\"host\" = \"127.0.0.1\"\n",
     "at line 3, column 21: server.host is set twice (a key is set once in its section) "
     "(TOML parser: Cannot overwrite a value)"),
    ("[email]\nbackend = \"smtp\"\nsmtp_host = 'mail.example.com\n",
     "at its end: a text value not closed (its closing quote missing?) "
     "(TOML parser: Expected \"'\")"),
    ("[server]\nhost = \"127.0.0.1\n",
     "at line 2, column 18: a text value not closed on its line (its closing quote "
     "missing?) (TOML parser: Illegal character '\\n')"),
    ("[server]\nport 8080\n",
     "at line 2, column 6: a key without = and a value (write key = value; a key with a "
     "space needs quotes) (TOML parser: Expected '=' after a key in a key/value pair)"),
    ("[server]\nhost = localhost\n",
     "at line 2, column 8: not a value (text needs quotes, as \"127.0.0.1\"; true and false "
     "in lower case; numbers as digits) (TOML parser: Invalid value)"),
    ("[portal]\nenabled = True\n",
     "at line 2, column 11: not a value (text needs quotes, as \"127.0.0.1\"; true and false "
     "in lower case; numbers as digits) (TOML parser: Invalid value)"),
    ("[server]\nport = 80 80\n",
     "at line 2, column 11: more on the line after its value (one key = value a line; text "
     "needs quotes around all of it) (TOML parser: Expected newline or end of document after "
     "a statement)"),
    ("[server\nport = 1\n",
     "at line 1, column 8: a [section] without its closing ] (TOML parser: Expected ']' at "
     "the end of a table declaration)"),
    ("[auth]\nallowed_email_domains = [\"example.com\"\n",
     "at its end: a list [...] not closed with ] (TOML parser: Unclosed array)"),
    ("[database]\npath = \"C:\\data\\box.db\"\n",
     "at line 2, column 13: a backslash in a \"...\" text (write \\\\ for one, or put the "
     "text in '...') (TOML parser: Unescaped '\\' in a string)"),
    ("[email]\nsmtp_host = 'mail.example.com\nsmtp_user = 'me'\n",
     "at line 2, column 30: a text value not closed on its line (its closing quote "
     "missing?) (TOML parser: Found invalid character '\\n')"),
    ("[[providers]\nname = 'x'\n",
     "at line 1, column 12: a [[section]] without its closing ]] (TOML parser: Expected "
     "']]' at the end of an array declaration)"),
    ("[server]\nx = {a = 1, a = 2}\n",
     "at line 2, column 18: a key is set twice inside one {...} (TOML parser: Duplicate "
     "inline table key 'a')"),
    ("[server]\nx = {a = 1}\nx.b = 2\n",
     "at line 3, column 8: server.x was given whole above, as {...} or [...]: write all of "
     "it there (TOML parser: Cannot mutate immutable namespace ('server', 'x'))"),
    ("[server.x]\n[server]\nx.c = 1\n",
     "at line 3, column 8: server.x has its own [server.x] section: put its keys there (TOML "
     "parser: Cannot redefine namespace ('server', 'x'))"),
    ("[server]\n# a\x01b\n",
     "at line 2, column 4: a control character TOML does not take (in text, write it as an "
     "escape such as \\u0001) (TOML parser: Found invalid character '\\x01')"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "said"), TYPOS)
def test_a_typo_in_the_file_is_said_in_plain_words(tmp_path: Path, text: str, said: str) -> None:
    path = tmp_path / "codelace.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(str(path), {})
    assert str(caught.value) == f"{path}: not valid TOML {said}"


def test_a_key_set_twice_names_no_value_of_it(tmp_path: Path) -> None:
    """The key is named, never its value (a secret set twice stays unsaid)."""
    path = tmp_path / "codelace.toml"
    path.write_text('[server]\nsecret_key = "first-secret-value"\nsecret_key = "second"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(str(path), {})
    line = str(caught.value)
    assert "server.secret_key is set twice" in line and "line 3" in line, line
    assert "first-secret" not in line and "second" not in line, line


def test_a_secret_set_twice_over_several_lines_names_its_key_not_its_text(tmp_path: Path) -> None:
    """A value over several lines (a multi-line text or list) set twice: the key is named from
    the line it starts on, not from the value's last line (base64 ends in '=')."""
    path = tmp_path / "codelace.toml"
    secret = "QUJDREVGR0hJSktMTU5PUA="
    path.write_text(f'[server]\nsecret_key = "x"\nsecret_key = """\n{secret}"""\n', newline="")
    with pytest.raises(ConfigError) as caught:
        load_config(str(path), {})
    line = str(caught.value)
    assert "server.secret_key is set twice" in line, line
    assert secret[:-1] not in line, line


def test_a_line_break_tomllib_does_not_count_names_the_right_key(tmp_path: Path) -> None:
    """U+2028 or NEL in a comment is no line break to TOML: the key named is the one set
    twice, not the one on the line above it."""
    path = tmp_path / "codelace.toml"
    for end in ("\n", "\r\n"):
        text = '[server]\n# pasted\u2028note\nport = 1\nhost = "::1"\nport = 2\n'
        path.write_text(text.replace("\n", end), newline="")
        with pytest.raises(ConfigError) as caught:
            load_config(str(path), {})
        said = str(caught.value)
        assert "line 5, column 9: server.port is set twice" in said, (end, said)
