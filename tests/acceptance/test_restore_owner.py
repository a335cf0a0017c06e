"""`restore` run by root on a box whose files belong to the service's user: the restored
database keeps the owner of the file it replaces, so the service starts again on it."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.acceptance.cli_tools import Box
from tests.support import as_nobody

pytestmark = pytest.mark.timeout(60)
SERVICE_USER = 65534  # nobody


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
        doctor = as_nobody(box.config, "doctor", home=root)
    finally:
        shutil.rmtree(root)
    assert (owner.st_uid, owner.st_gid) == (SERVICE_USER, SERVICE_USER)
    assert doctor.returncode == 0, doctor.stderr


def test_a_restore_as_root_on_a_new_machine_leaves_the_files_to_the_data_folders_owner() -> None:
    """Disaster recovery: a new machine, the service user's empty data folder (its secret_key
    copied in), `sudo codelace-box restore` of the old box's backup: the database and the
    lock file restore made beside it were root's, and the service could not start."""
    if os.geteuid() != 0:
        pytest.skip("needs root to give the box to another user")
    root = Path(tempfile.mkdtemp(prefix="codelace-restore-", dir="/tmp"))
    try:
        os.chmod(root, 0o755)
        old = Box.create(root / "old")
        old.ok("users", "create", "ana@owner.test")
        old.ok("providers", "add", "up", "--kind", "openai", "--base-url",
               "http://127.0.0.1:9/v1", "--key", "sk-restore-owner-0001")  # fmt: skip
        old.ok("backup", str(root / "one.db"))
        new = Box.create(root / "new")
        new.db_path.parent.mkdir()
        shutil.copy(old.db_path.parent / "secret_key", new.db_path.parent / "secret_key")
        for path in [new.root, *new.root.rglob("*")]:
            os.chown(path, SERVICE_USER, SERVICE_USER)
        new.ok("restore", str(root / "one.db"))
        owners = {path.name: (path.stat().st_uid, path.stat().st_gid)
                  for path in new.db_path.parent.iterdir()}  # fmt: skip
        users = as_nobody(new.config, "users", "list", home=root)
    finally:
        shutil.rmtree(root)
    assert owners == dict.fromkeys(
        ["codelace.db", "codelace.db.lock", "secret_key"], (SERVICE_USER, SERVICE_USER)
    )
    assert users.returncode == 0 and "ana@owner.test" in users.stdout, users.stderr
