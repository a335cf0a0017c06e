"""Output shaping has one layer per client: the JSON numbers and moments a client sees are made
in api/views.py (the HTTP API) and cli/ (the command line), never in a feature package, which
returns rows and dataclasses. The one exception is the inference answer's `usage.cost_usd`,
added on the request path (gateway/outcome.py) because a stream is relayed chunk by chunk."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support import REPO_ROOT

SHAPERS = frozenset({"usd_json", "iso_z"})  # money and moments as a client reads them
SHAPING_LAYERS = (
    "codelace_box/api/views.py",
    "codelace_box/cli/",
    "codelace_box/gateway/outcome.py",
)
DEFINED_IN = ("codelace_box/money.py", "codelace_box/db/core.py")


def shaper_uses(path: Path) -> list[str]:
    """Where a module imports one of the shapers."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return [
        f"{path.relative_to(REPO_ROOT)}:{node.lineno}: {alias.name}"
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
        if alias.name in SHAPERS
    ]


def test_only_the_client_layers_shape_output() -> None:
    found = []
    for path in sorted((REPO_ROOT / "codelace_box").rglob("*.py")):
        name = path.relative_to(REPO_ROOT).as_posix()
        if name in DEFINED_IN or name.startswith(SHAPING_LAYERS):
            continue
        found += shaper_uses(path)
    assert found == []


def test_the_check_sees_the_api_views() -> None:
    assert shaper_uses(REPO_ROOT / "codelace_box" / "api" / "views.py")
