"""What serve leaves unimported: the libraries only some commands or some settings use
(Stripe, httpx for alerts and key checks, psycopg for PostgreSQL, textual for the dashboard)
cost start-up time and memory in every server that never needs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
LAZY = ("stripe", "httpx", "psycopg", "textual")


def test_a_sqlite_server_imports_none_of_the_lazy_libraries() -> None:
    code = (
        "import json, sys\n"
        "import codelace_box.cli, codelace_box.server\n"
        "from codelace_box.config import Config\n"
        "codelace_box.server.create_app(Config())\n"
        f"print(json.dumps([name for name in {LAZY!r} if name in sys.modules]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, check=False
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
