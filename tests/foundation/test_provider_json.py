"""The provider translations (codelace_box/providers/: every event of a stream, every tool
call's arguments, on the hot path) parse JSON with jsonwire.loads, orjson's speed with what
json.loads gives, value or error: a translation calling the standard library's json.loads
itself (the native Responses stream did, for each event) spends about twice the time for the
same result. Read from the source (ast), nothing imported."""

from __future__ import annotations

import ast
from pathlib import Path

PROVIDERS = Path(__file__).resolve().parents[2] / "codelace_box" / "providers"


def stdlib_parses(path: Path) -> list[str]:
    """Where a module calls `json.loads` (or imports `loads` from json)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module == "json":
            if any(alias.name == "loads" for alias in node.names):
                found.append(f"{path.name}:{node.lineno} imports json.loads")
        elif (isinstance(node, ast.Attribute) and node.attr == "loads"
              and isinstance(node.value, ast.Name) and node.value.id == "json"):  # fmt: skip
            found.append(f"{path.name}:{node.lineno} calls json.loads")
    return found


def test_the_providers_parse_json_with_jsonwire() -> None:
    modules = sorted(PROVIDERS.glob("*.py"))
    assert len(modules) > 40  # (the folder was found)
    found = [place for path in modules for place in stdlib_parses(path)]
    assert found == [], found
