"""pytest setup of the binary smoke test: the repository root on sys.path, so `tests.fakes`
and `tests.support` import however pytest is started (`pytest build/smoke_test.py` too)."""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = str(Path(__file__).resolve().parent.parent)
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)
