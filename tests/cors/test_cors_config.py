"""server.cors_allow_origins: its default, the environment override, normalizing and the one
clear line a malformed origin stops the start with."""

from __future__ import annotations

from pathlib import Path

import pytest

from codelace_box.config import load_config
from codelace_box.errors import ConfigError


def _load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[str]:
    path = tmp_path / "codelace.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(str(path), env or {}).server.cors_allow_origins


def test_the_default_allows_every_origin(tmp_path: Path) -> None:
    assert _load(tmp_path, "") == ["*"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://chat.example.com,http://localhost:3000",
         ["https://chat.example.com", "http://localhost:3000"]),
        ('["https://a.example"]', ["https://a.example"]),
        ("[]", []),
        ("", []),
        ("*", ["*"]),
    ],
)  # fmt: skip
def test_the_environment_sets_the_list(tmp_path: Path, value: str, expected: list[str]) -> None:
    env = {"CODELACE_SERVER_CORS_ALLOW_ORIGINS": value}
    assert _load(tmp_path, '[server]\ncors_allow_origins = ["https://file.example"]\n', env) == (
        expected
    )


def test_origins_are_kept_as_a_browser_sends_them(tmp_path: Path) -> None:
    text = (
        '[server]\ncors_allow_origins = ["HTTPS://Chat.Example.com:443", "http://a.example:80", '
        '"http://[::1]:8080", "https://b.example:8443", "chrome-extension://abcdef"]\n'
    )
    assert _load(tmp_path, text) == [
        "https://chat.example.com",
        "http://a.example",
        "http://[::1]:8080",
        "https://b.example:8443",
        "chrome-extension://abcdef",
    ]


@pytest.mark.parametrize(
    "bad",
    ["https://chat.example.com/", "https://chat.example.com/app", "chat.example.com",
     "https://", "https://a.example:0", "https://a.example:port", "https://*.example.com", " "],
)  # fmt: skip
def test_a_malformed_origin_is_one_clear_line(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, f'[server]\ncors_allow_origins = ["https://ok.example", "{bad}"]\n')
    message = str(caught.value)
    assert "\n" not in message and "codelace.toml" in message
    assert "server.cors_allow_origins must be origins like" in message
    assert "scheme://host[:port]" in message


def test_a_malformed_origin_from_the_environment_names_the_variable(tmp_path: Path) -> None:
    env = {"CODELACE_SERVER_CORS_ALLOW_ORIGINS": "https://a.example/path"}
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, "", env)
    assert str(caught.value).startswith("env CODELACE_SERVER_CORS_ALLOW_ORIGINS: ")
