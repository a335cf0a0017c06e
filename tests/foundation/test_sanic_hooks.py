"""stopping.py hooks Sanic internals: `serve` refuses, in one line naming Sanic's version, a
Sanic that lacks one of them (rather than failing mid-stop with an AttributeError)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sanic import __version__ as sanic_version

from codelace_box.errors import ConfigError
from codelace_box.http_guard import GUARD_HOOKS
from codelace_box.stopping import SANIC_HOOKS, check_sanic_hooks
from tests.foundation.conftest import make_workspace, one_error_line
from tests.support import run_cli


class StandInManager:
    """Shaped like a Sanic release that renamed one private method and one attribute."""

    def __init__(self) -> None:
        self.worker_state: dict[str, object] = {}

    def shutdown_signal(self) -> None:
        """Present."""

    def poll_monitor(self) -> None:
        """What `_poll_monitor` became in this imagined release."""


def test_the_installed_sanic_has_every_hooked_attribute() -> None:
    hooked = {name for _, name in SANIC_HOOKS}
    assert {"WorkerManager", "_poll_monitor", "_all_workers_ack", "shutdown_signal"} <= hooked
    check_sanic_hooks()  # raises if the pinned Sanic lacks one
    guarded = {name for _, name in GUARD_HOOKS}  # http_guard.py's (slow and broken clients)
    assert {"check_timeouts", "http1_request_header", "request_bytes_left"} <= guarded
    check_sanic_hooks(GUARD_HOOKS)


def test_a_missing_hook_is_one_line_naming_the_sanic_version() -> None:
    hooks = (
        (StandInManager, "shutdown_signal"),
        (StandInManager, "_poll_monitor"),
        (StandInManager, "worker_state"),  # set in __init__: counts as present
        (StandInManager, "_shutting_down"),
    )
    with pytest.raises(ConfigError) as raised:
        check_sanic_hooks(hooks)
    message = raised.value.message
    assert "\n" not in message
    assert f"sanic {sanic_version} lacks" in message
    assert "StandInManager._poll_monitor, StandInManager._shutting_down," in message
    assert "worker_state" not in message and "shutdown_signal" not in message
    assert ">=25.12.1,<25.13" in message


def test_an_attribute_set_in_init_counts_as_present() -> None:
    check_sanic_hooks(((StandInManager, "worker_state"), (StandInManager, "poll_monitor")))


@pytest.mark.skipif(
    bool(os.environ.get("CODELACE_TEST_BINARY")), reason="the binary ignores sitecustomize"
)
def test_serve_refuses_a_sanic_without_a_hook_before_serving(tmp_path: Path) -> None:
    """A real `serve` process on a Sanic whose WorkerManager lost `_poll_monitor` (removed by a
    sitecustomize module, as a Sanic upgrade would)."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "from sanic.worker.manager import WorkerManager\ndel WorkerManager._poll_monitor\n"
    )
    space = make_workspace(tmp_path / "ws")
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    result = run_cli(space.config, "serve", env={"PYTHONPATH": path}, timeout=30)
    line = one_error_line(result.stderr)
    assert result.returncode == 78, result.stderr  # EX_CONFIG: no restart mends it
    assert f"sanic {sanic_version} lacks WorkerManager._poll_monitor" in line
    assert not space.db_path.exists(), "it stopped before touching the database"
