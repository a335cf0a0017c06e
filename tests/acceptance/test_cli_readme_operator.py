"""The README's operator sections as written: "Daily tasks", "Restore", "Upgrading" (with its
rollback) and the systemd unit and nginx site of "Running under systemd".

Shell blocks are read from README.md. `codelace-box` lines run through the CLI under test in a
box folder standing in for /var/lib/codelace (`cd /var/lib/codelace &&` and `sudo -u codelace`
dropped, `$(date ...)` expanded by `date`); the binary's own paths (/usr/local/bin) point into
a temp folder, so `cp`, `install` and `mv` run as written there; `systemctl` lines are recorded,
not run. The unit is checked with `systemd-analyze verify` where systemd is installed.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from codelace_box.errors import EX_CONFIG
from tests.acceptance.cli_tools import Box
from tests.fakes.models_upstream import FakeModelsUpstream
from tests.support import REPO_ROOT

pytestmark = pytest.mark.timeout(180)
GOOD_KEY = "sk-readme-daily-good-0001"
SECOND_KEY = "sk-readme-daily-second-0002"


def section(title: str) -> str:
    text = (REPO_ROOT / "README.md").read_text()
    start = text.index(title)
    ends = [text.find(mark, start + len(title)) for mark in ("\n## ", "\n### ")]
    return text[start : min(e for e in ends if e > 0)]


def blocks(title: str, lang: str = "sh") -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", section(title), re.S)


def commands(block: str) -> list[str]:
    """The command lines of a block, continuations joined, comments dropped."""
    lines = block.replace("\\\n", " ").splitlines()
    return [
        line.split("  #")[0].strip() for line in lines if line.strip() and not line.startswith("#")
    ]


class Operator:
    """Runs README lines in the box folder; /usr/local/bin is `bin` in a temp folder."""

    def __init__(self, box: Box, bin_dir: Path) -> None:
        self.box = box
        self.bin = bin_dir
        self.systemctl: list[str] = []
        self.out: dict[str, str] = {}

    def run(self, line: str) -> str:
        line = line.replace("cd /var/lib/codelace && ", "").replace("sudo -u codelace ", "")
        line = re.sub(r"\$\((date [^)]*)\)", lambda m: self._date(m.group(1)), line)
        line = line.replace("/usr/local/bin/", f"{self.bin}/")
        tokens = shlex.split(line, comments=True)
        if tokens == ["cd", "/var/lib/codelace"]:
            return ""
        if tokens[0] == "systemctl":
            self.systemctl.append(" ".join(tokens[1:]))
            return ""
        if tokens[0] in ("cp", "install", "mv"):
            subprocess.run(tokens, cwd=self.bin.parent, check=True, timeout=30)
            return ""
        assert tokens[0] == "codelace-box", line
        out = self.box.ok(*tokens[1:])
        self.out[" ".join(tokens[1:3])] = out
        return out

    @staticmethod
    def _date(args: str) -> str:
        return subprocess.run(
            shlex.split(args), capture_output=True, text=True, check=True
        ).stdout.strip()


@pytest.fixture
def models_upstream() -> Iterator[FakeModelsUpstream]:
    fake = FakeModelsUpstream("openai", {GOOD_KEY, SECOND_KEY}).start()
    yield fake
    fake.stop()


@pytest.fixture
def operator(tmp_path: Path) -> Operator:
    box = Box.create(tmp_path / "var-lib-codelace")
    bin_dir = tmp_path / "usr-local-bin"
    bin_dir.mkdir()
    return Operator(box, bin_dir)


def test_daily_tasks_work_as_written(
    operator: Operator, models_upstream: FakeModelsUpstream
) -> None:
    upstream = models_upstream
    box = operator.box
    box.ok("providers", "add", "openai", "--kind", "openai", "--base-url", upstream.base_url,
           "--key", GOOD_KEY)  # fmt: skip
    box.ok("providers", "key-add", "openai", "--key", SECOND_KEY)
    box.ok(
        "models", "set", "openai/gpt-4o-mini", "--input-per-1m", "0.15", "--output-per-1m", "0.6"
    )
    box.sql("UPDATE provider_key SET failing = 1 WHERE id = 2")
    (block,) = blocks("## Daily tasks")
    for line in commands(block):
        if line.startswith("codelace-box providers key-enable"):
            assert "2:sk-…0002!" in operator.out["providers list"]  # the README's "!" mark
        operator.run(line)
    assert "ana@example.com" in operator.out["users show"]
    assert json.loads(operator.out["usage report"])["by"] == "model"  # the last report
    model = {m["id"]: m for m in box.json("models", "list")}["openai/gpt-4o-mini"]
    assert (model["input_per_1m"], model["output_per_1m"]) == (0.15, 0.65)
    assert "back in rotation" in operator.out["providers key-enable"]
    assert [k["id"] for k in box.json("providers", "list")[0]["keys"]] == [1]
    assert operator.out["doctor"].startswith("ok: ")


def test_the_claude_code_catalog_lines_work_as_written(operator: Operator) -> None:
    """After "First run" (its two providers), the "Claude Code" section's operator block runs
    line by line: every model an alias names was set before it."""
    box = operator.box
    for kind in ("openai", "anthropic"):
        box.ok("providers", "add", kind, "--kind", kind, "--base-url", "http://127.0.0.1:9",
               "--key", f"sk-{kind}-readme")  # fmt: skip
    catalog = blocks("## Claude Code")[1]
    for line in commands(catalog):
        operator.run(line)
    listed = {m["id"]: m["aliases"] for m in box.json("models", "list")}
    aliases = re.findall(r"^codelace-box models alias (\S+) (\S+)", catalog, re.M)
    assert len(aliases) >= 3
    for name, model in aliases:
        assert name in listed[model], (name, model)


def test_restore_upgrade_and_rollback_work_as_written(operator: Operator) -> None:
    box = operator.box
    box.ok("users", "create", "ana@example.com")
    box.ok("credit", "ana@example.com", "5", "--reason", "before")
    (cron,) = re.findall(r"^15 3 \* \* \* codelace (.*)$", section("## Backups"), re.M)
    operator.run(cron.replace("\\%", "%").replace("/usr/local/bin/codelace-box", "codelace-box"))
    [nightly] = (box.root / "backups").glob("codelace-*.db")
    box.ok("credit", "ana@example.com", "3", "--reason", "after the backup")

    (restore,) = blocks("### Restore")
    for line in commands(
        restore.replace("backups/codelace-2026-11-20.db", f"backups/{nightly.name}")
    ):
        operator.run(line)
    assert operator.systemctl == ["stop codelace-box", "start codelace-box"]
    assert json_balance(box) == 5, "the restore loses what happened after the backup"
    assert list((box.root / "data").glob("codelace.db.replaced-*"))

    (operator.bin / "codelace-box").write_text("the old binary")
    (operator.bin.parent / "codelace-box").write_text("the new binary")  # what was downloaded
    upgrade, rollback = blocks("## Upgrading")
    for line in commands(upgrade):
        operator.run(line)
    assert (operator.bin / "codelace-box.previous").read_text() == "the old binary"
    assert (operator.bin / "codelace-box").read_text() == "the new binary"
    time.sleep(1.1)
    for line in commands(upgrade):  # a second upgrade must not trip over the first one's backup
        operator.run(line)
    backups = sorted((box.root / "backups").glob("before-upgrade-*.db"))
    assert len(backups) == 2, "backups are named by date and time"
    assert "schema version" in operator.out["version --verbose"]
    assert operator.out["migrate --status"].splitlines()[-1] == "pending: none"

    box.ok("credit", "ana@example.com", "1", "--reason", "after the upgrade")
    first = backups[0].name
    for line in commands(re.sub(r"backups/before-upgrade-\S+\.db", f"backups/{first}", rollback)):
        operator.run(line)
    assert json_balance(box) == 5, "a rollback loses what happened since the backup"
    assert not (operator.bin / "codelace-box.previous").exists()


def json_balance(box: Box) -> float:
    return float(box.json("users", "show", "ana@example.com")["credit_balance_usd"])


def test_the_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    (unit,) = blocks("## Running under systemd", "ini")
    for hardening in ("CapabilityBoundingSet=\n", "PrivateDevices=yes", "ProtectKernelTunables=yes",
                      "ProtectKernelModules=yes", "ProtectKernelLogs=yes",
                      "RestrictAddressFamilies=", "SystemCallFilter=@system-service"):  # fmt: skip
        assert hardening in unit, hardening
    # a configuration error (serve's exit status for one) is not restarted for ever
    assert f"RestartPreventExitStatus={EX_CONFIG}\n" in unit and "Restart=on-failure\n" in unit
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here: the unit's syntax is not checked")
    path = tmp_path / "codelace-box.service"
    path.write_text(unit.replace("ExecStart=/usr/local/bin/codelace-box", "ExecStart=/bin/true"))
    result = subprocess.run([analyze, "verify", str(path)], capture_output=True, text=True,
                            timeout=60, check=False)  # fmt: skip
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr


def test_the_nginx_site_redirects_port_80_and_lets_the_box_answer_413() -> None:
    site, under_a_path = blocks("## Running under systemd", "nginx")  # the site, its path form
    assert (
        "location /gateway/ {" in under_a_path
        and "proxy_pass http://127.0.0.1:8080/;" in under_a_path
    )
    assert "listen 80;" in site and "return 301 https://$host$request_uri;" in site
    assert "listen 443 ssl http2;" in site and "http2 on;" not in site  # nginx before 1.25.1
    size = re.search(r"client_max_body_size (\d+)m;", site)
    assert size and int(size.group(1)) * 2**20 > 10485760  # above server.max_body_bytes
    text = section("## Running under systemd")
    assert "1.25.1" in text and "`http2 on;`" in text
