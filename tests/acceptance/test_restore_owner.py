"""`restore` run by root on a box whose files belong to the service's user: the restored
database keeps the owner of the file it replaces, so the service starts again on it."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.acceptance.cli_tools import Box
from tests.support import PROGRAM, cli_env

pytestmark = pytest.mark.timeout(60)
SERVICE_USER = 65534  # nobody
AS_SERVICE_USER = ("setpriv", f"--reuid={SERVICE_USER}", f"--regid={SERVICE_USER}",
                   "--clear-groups")  # fmt: skip


def test_a_restore_run_as_root_leaves_the_database_to_the_service_user() -> None:
    """The operator ran `sudo codelace-box restore ...` (root) on a box whose service runs as
    its own user: the restored file was root's, 600, and the service's next start failed
    (`... belongs to root and the user running codelace-box may not read and write it`) until
    the operator found the chown to run. The replaced file kept its owner all along."""
    if os.geteuid() != 0:
        pytest.skip("needs root to give the box to another user")
    root = Path(tempfile.mkdtemp(prefix="codelace-restore-", dir="/tmp"))
    try:
        os.chmod(root, 0o755)
        box = Box.create(root / "box")
        box.ok("users", "create", "ana@owner.test")
        box.ok("backup", str(root / "one.db"))
        for path in [box.root, *box.root.rglob("*")]:
            os.chown(path, SERVICE_USER, SERVICE_USER)
        box.ok("restore", str(root / "one.db"))
        owner = box.db_path.stat()
        doctor = subprocess.run(
            [*AS_SERVICE_USER, *PROGRAM, "--config", str(box.config), "doctor"],
            capture_output=True, text=True, timeout=30, env=cli_env({"HOME": str(root)}),
            check=False,
        )  # fmt: skip
    finally:
        shutil.rmtree(root)
    assert (owner.st_uid, owner.st_gid) == (SERVICE_USER, SERVICE_USER)
    assert doctor.returncode == 0, doctor.stderr
