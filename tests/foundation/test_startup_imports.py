"""What `serve` and the CLI import as they start: not the libraries that only some paths need.

Every start pays for its imports (the tests start a few hundred servers; an operator's binary
each command): httpx (key checks and alerts, it brings rich: 0.06-0.1 s), stripe (payments,
0.27 s), textual (the dashboard) are imported where they are used, and the CLI does not load
the server's web stack.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support import cli_env

LAZY = ("httpx", "rich", "stripe", "textual")
SERVER_ONLY = ("sanic", "aiohttp", "prometheus_client")


def imported_by(module: str, candidates: tuple[str, ...]) -> list[str]:
    """Which of `candidates` a fresh interpreter has loaded after importing `module`."""
    loaded = f"[m for m in {candidates!r} if m in sys.modules]"
    probe = f"import sys, json, {module}; print(json.dumps({loaded}))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=cli_env(), check=True
    )
    found: list[str] = json.loads(result.stdout)
    return found


@pytest.mark.parametrize(
    ("module", "not_at_start"),
    [
        ("codelace_box.server", LAZY),
        ("codelace_box.cli", LAZY + SERVER_ONLY),
    ],
)
def test_a_start_imports_only_what_it_needs(module: str, not_at_start: tuple[str, ...]) -> None:
    assert imported_by(module, not_at_start) == []


def test_the_probe_sees_an_import() -> None:
    assert imported_by("codelace_box.gateway.client", SERVER_ONLY) == ["aiohttp"]
