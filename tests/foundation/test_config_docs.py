"""The documented configuration cannot drift: codelace.toml.example, `init`'s file and the
SPEC's configuration table all agree with config.py."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from codelace_box.config import SECTIONS, Config, init_config_text, load_config, render_example
from tests.support import REPO_ROOT

EXAMPLE = REPO_ROOT / "codelace.toml.example"
SPEC = REPO_ROOT.parent / "shared" / "SPEC.md"
COMMENTED_KEY = re.compile(r"^# ([a-z_]+) = (.*)$")


def every_key() -> set[str]:
    return {f"{name}.{f.name}" for name, cls in SECTIONS.items() for f in dataclasses.fields(cls)}


def test_the_example_file_is_what_config_py_renders() -> None:
    assert EXAMPLE.read_text() == render_example(), (
        "codelace.toml.example drifted from config.py; regenerate it with: python -c "
        "'from codelace_box.config import render_example; print(render_example(), end=\"\")'"
        " > codelace.toml.example"
    )


def test_the_example_lists_every_key_with_a_comment() -> None:
    lines = EXAMPLE.read_text().splitlines()
    section = ""
    listed: set[str] = set()
    for number, line in enumerate(lines):
        if line.startswith("["):
            section = line.strip("[]")
        elif match := COMMENTED_KEY.match(line):
            listed.add(f"{section}.{match.group(1)}")
            doc = lines[number - 1]
            assert doc.startswith("# ") and not COMMENTED_KEY.match(doc), f"no comment: {line}"
    assert listed == every_key()


def test_the_example_uncommented_loads_back_to_the_defaults(tmp_path: Path) -> None:
    text = "\n".join(
        line[2:] if COMMENTED_KEY.match(line) else line for line in render_example().splitlines()
    )
    path = tmp_path / "all.toml"
    path.write_text(text)
    loaded = load_config(str(path), {})
    defaults = Config()
    # the only difference: a relative database path is anchored at the config file's folder
    assert loaded.database.path == str(tmp_path / defaults.database.path)
    loaded = dataclasses.replace(loaded, database=defaults.database)
    assert dataclasses.replace(loaded, source="x") == dataclasses.replace(defaults, source="x")


def test_init_text_sets_only_the_secret(tmp_path: Path) -> None:
    text = init_config_text()
    assert text.count("\nsecret_key = ") == 1
    path = tmp_path / "init.toml"
    path.write_text(text)
    loaded = load_config(str(path), {})
    assert len(loaded.server.secret_key) >= 40
    assert dataclasses.replace(loaded.server, secret_key="") == Config().server
    assert init_config_text("kept") != init_config_text("kept2")
    assert 'secret_key = "kept"' in init_config_text("kept")


def spec_table_rows() -> list[tuple[list[str], list[str]]]:
    """(keys, backticked defaults) of each row of the SPEC's configuration table."""
    text = SPEC.read_text()
    table = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or "." not in cells[0] or cells[0] == "section.key":
            continue
        keys, section = [], ""
        for raw in cells[0].split("/"):
            name = raw.strip()
            if "." in name:
                section, name = name.split(".", 1)
            keys.append(f"{section}.{name}")
        rows.append((keys, re.findall(r"`([^`]*)`", cells[1])))
    return rows


@pytest.mark.skipif(not SPEC.exists(), reason=f"no SPEC at {SPEC} (outside the workspace)")
def test_every_key_of_the_spec_table_exists_in_config_py() -> None:
    rows = spec_table_rows()
    spec_keys = {key for keys, _ in rows for key in keys}
    assert len(spec_keys) >= 25  # the table parsed, not an empty match
    missing = spec_keys - every_key()
    assert not missing, f"SPEC keys missing from config.py: {sorted(missing)}"


@pytest.mark.skipif(not SPEC.exists(), reason=f"no SPEC at {SPEC} (outside the workspace)")
def test_the_spec_defaults_are_the_defaults() -> None:
    config = Config()
    checked = 0
    for keys, defaults in spec_table_rows():
        if len(keys) != len(defaults):
            continue  # a row describing its default in words
        for key, documented in zip(keys, defaults, strict=True):
            section, name = key.split(".")
            actual = getattr(getattr(config, section), name)
            shown = documented.strip('"')
            if key == "server.public_url":  # documented as derived from host and port
                shown = shown.replace("<host>", config.server.host)
                shown = shown.replace("<port>", str(config.server.port))
                actual = config.server.base_url
            if isinstance(actual, list):
                assert shown == "[]" and actual == [], key
            elif isinstance(actual, int | float) and not isinstance(actual, bool):
                assert float(shown) == float(actual), key
            else:
                assert shown == str(actual), key
            checked += 1
    assert checked >= 12
