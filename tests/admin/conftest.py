"""Fixtures of the admin dashboard tests: a migrated database per test with its config."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.admin.pilot import AdminEnv, make_env


@pytest.fixture
def admin_env(tmp_path: Path) -> AdminEnv:
    """A fresh, migrated database and the config that points at it (no server running)."""
    return make_env(tmp_path)
