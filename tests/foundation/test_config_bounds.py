"""Every gateway timeout, the retry count, the probe interval and the body limits have an upper
bound, refused at start with the key named: `max_retries = 1000000` hammered an upstream (and
held a request) retry after retry, and a timeout of 1e300 never ended (inf and nan were
already refused as no number)."""

from __future__ import annotations

from pathlib import Path

import pytest

from codelace_box.config import load_config
from codelace_box.errors import ConfigError

ABSURD = [
    ("gateway", "max_retries", "1000000"),
    ("gateway", "connect_timeout_sec", "1e300"),
    ("gateway", "read_timeout_sec", "1e300"),
    ("gateway", "key_probe_sec", "1e300"),
    ("gateway", "max_upstream_body_bytes", "9223372036854775807"),
    ("gateway", "max_sse_event_bytes", "9223372036854775807"),
    ("server", "max_body_bytes", "9223372036854775807"),
]
LARGEST = [
    ("gateway", "max_retries", "10"),
    ("gateway", "connect_timeout_sec", "300.0"),
    ("gateway", "read_timeout_sec", "3600.0"),
    ("gateway", "key_probe_sec", "86400.0"),
    ("gateway", "max_upstream_body_bytes", "1073741824"),
    ("gateway", "max_sse_event_bytes", "1073741824"),
    ("server", "max_body_bytes", "1073741824"),
]


@pytest.mark.parametrize(("section", "key", "value"), ABSURD)
def test_an_absurd_value_in_the_file_is_refused_naming_the_key(
    tmp_path: Path, section: str, key: str, value: str
) -> None:
    path = tmp_path / "codelace.toml"
    path.write_text(f"[{section}]\n{key} = {value}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert f"{section}.{key} must be " in str(caught.value)
    assert " to " in str(caught.value), "the message says the range"


@pytest.mark.parametrize(("section", "key", "value"), ABSURD)
def test_an_absurd_value_in_a_variable_is_refused_naming_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, section: str, key: str, value: str
) -> None:
    monkeypatch.chdir(tmp_path)
    variable = f"CODELACE_{section.upper()}_{key.upper()}"
    with pytest.raises(ConfigError, match=rf"^env {variable}: {section}\.{key} must be "):
        load_config(None, {variable: value})


@pytest.mark.parametrize(("section", "key", "value"), LARGEST)
def test_the_largest_allowed_value_loads(
    tmp_path: Path, section: str, key: str, value: str
) -> None:
    path = tmp_path / "codelace.toml"
    path.write_text(f"[{section}]\n{key} = {value}\n")
    loaded = getattr(getattr(load_config(path, {}), section), key)
    assert loaded == type(loaded)(value)
