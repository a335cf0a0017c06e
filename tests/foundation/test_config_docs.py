"""The documented configuration cannot drift: codelace.toml.example, `init`'s file and the
table of docs/configuration.md all agree with the config package."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from decimal import Decimal
from pathlib import Path

from codelace_box.config import SECTIONS, Config, init_config_text, load_config, render_example
from codelace_box.config.rules import MAX_STRIPE_USD, MAX_TOPUP_USD
from tests.support import REPO_ROOT

EXAMPLE = REPO_ROOT / "codelace.toml.example"
REFERENCE = REPO_ROOT / "docs" / "configuration.md"
COMMENTED_KEY = re.compile(r"^# ([a-z_]+) = (.*)$")


def every_key() -> set[str]:
    return {f"{name}.{f.name}" for name, cls in SECTIONS.items() for f in dataclasses.fields(cls)}


def test_the_example_file_is_what_config_py_renders() -> None:
    assert EXAMPLE.read_text() == render_example(), (
        "codelace.toml.example drifted from config/schema.py; regenerate it with: python -c "
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
    # the only difference: relative paths are anchored at the config file's folder
    assert loaded.database.path == str(tmp_path / defaults.database.path)
    assert loaded.backup.dir == str(tmp_path / defaults.backup.dir)
    loaded = dataclasses.replace(loaded, database=defaults.database, backup=defaults.backup)
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


def reference_rows() -> list[tuple[str, list[str]]]:
    """(key, backticked defaults) of each row of the reference's table of keys."""
    rows = []
    for line in REFERENCE.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and re.fullmatch(r"[a-z_]+\.[a-z_0-9]+", cells[0]):
            rows.append((cells[0], re.findall(r"`([^`]*)`", cells[1])))
    return rows


def test_the_reference_documents_every_key_once_and_no_other() -> None:
    keys = [key for key, _ in reference_rows()]
    assert len(keys) == len(set(keys)), "a key documented twice"
    assert set(keys) == every_key(), (
        f"undocumented in docs/configuration.md: {sorted(every_key() - set(keys))}; "
        f"documented but not a key: {sorted(set(keys) - every_key())}"
    )


def test_the_documented_defaults_are_the_defaults() -> None:
    config = Config()
    checked = 0
    for key, defaults in reference_rows():
        if len(defaults) != 1:
            continue  # a default described in words (the generated secret, Stripe's own URL)
        section, name = key.split(".")
        actual = getattr(getattr(config, section), name)
        shown = defaults[0]
        if key == "server.public_url":  # documented as derived from host and port
            shown = shown.replace("<host>", config.server.host)
            shown = shown.replace("<port>", str(config.server.port))
            actual = config.server.base_url
        if isinstance(actual, bool):
            assert shown == str(actual).lower(), key
        elif isinstance(actual, list):
            assert tomllib.loads(f"v = {shown}")["v"] == actual, key
        elif isinstance(actual, str):
            assert shown.removeprefix('"').removesuffix('"') == actual, key
        else:
            assert Decimal(shown) == Decimal(str(actual)), key
        checked += 1
    assert checked >= 30


DOCUMENTED_RANGE = re.compile(r"(?<![\w.])(\d[\d.]*) ?(?:to|\u2013) ?(\d[\d.]*)(?![\d.])")
DOCUMENTED_ROW = re.compile(r"^\| ([a-z_]+\.[a-z_0-9]+) \| [^|]+ \| (.+) \|$")


def enforced_bounds() -> dict[str, tuple[object, object]]:
    """Each key's (minimum, maximum) as loading it enforces them: config/schema.py's bounds,
    and the Stripe amounts' maxima of config/rules.py."""
    bounds = {
        f"{name}.{f.name}": (f.metadata.get("minimum"), f.metadata.get("maximum"))
        for name, cls in SECTIONS.items()
        for f in dataclasses.fields(cls)
    }
    bounds["stripe.min_topup_usd"] = (bounds["stripe.min_topup_usd"][0], MAX_TOPUP_USD)
    bounds["stripe.trial_credit_usd"] = (bounds["stripe.trial_credit_usd"][0], MAX_STRIPE_USD)
    return bounds


def documented_rows() -> dict[str, str]:
    """Key -> the meaning cell of its row in the reference's table."""
    rows = {}
    for line in REFERENCE.read_text().splitlines():
        if match := DOCUMENTED_ROW.match(line):
            rows[match.group(1)] = match.group(2)
    return rows


def test_every_bounded_key_states_its_range() -> None:
    """A key that loading refuses out of a range says the range in its row (`1 to 8760`, or
    `at least 1` where there is no maximum): the reference left out the ranges of
    portal.session_hours, backup.keep, limits.rpm and a dozen more, so an operator learnt
    them only from a refused start."""
    rows = documented_rows()
    unstated = []
    for key, (low, high) in enforced_bounds().items():
        if low is None and high is None:
            continue
        if high is None:
            stated = re.search(rf"(?<![\w.])at least {low}(?![\d.])", rows[key]) is not None
        else:
            stated = DOCUMENTED_RANGE.search(rows[key]) is not None
        if not stated:
            unstated.append(f"{key} ({low} to {high})")
    assert not unstated, f"docs/configuration.md states no range for: {unstated}"


def test_the_documented_ranges_are_the_bounds_config_enforces() -> None:
    """A row's `(1-64)` (an en dash) or `0.1 to 86400` is what loading the key accepts: the
    reference quoted ranges nobody compared with config/schema.py's bounds (defaults alone
    were held)."""
    bounds = enforced_bounds()
    checked = 0
    for line in REFERENCE.read_text().splitlines():
        match = DOCUMENTED_ROW.match(line)
        if not match or (key := match.group(1)) not in bounds:
            continue
        low, high = bounds[key]
        for shown_low, shown_high in DOCUMENTED_RANGE.findall(match.group(2)):
            assert (Decimal(shown_low), Decimal(shown_high)) == (
                Decimal(str(low)),
                Decimal(str(high)),
            ), f"docs/configuration.md: {key} says {shown_low} to {shown_high}"
            checked += 1
    assert checked >= 10


def codelace_toml_blocks() -> list[str]:
    """The TOML blocks of the README and docs/ that are codelace.toml (every table one of its
    sections; Codex's config.toml and the like are left out)."""
    texts = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
    blocks = [b for p in texts for b in re.findall(r"```toml\n(.*?)```", p.read_text(), re.S)]
    return [b for b in blocks if set(tomllib.loads(b)) <= set(SECTIONS)]


def test_every_codelace_toml_block_of_the_docs_loads(tmp_path: Path) -> None:
    """An operator copies these into codelace.toml: each must start a box as written (no
    unknown key, no value out of range, the keys that depend on each other given together)."""
    blocks = codelace_toml_blocks()
    assert any("smtp_host" in block for block in blocks)  # the systemd section's
    for number, block in enumerate(blocks):
        path = tmp_path / f"block-{number}.toml"
        path.write_text(block)
        config = load_config(str(path), env={})
        assert isinstance(config, Config), block
