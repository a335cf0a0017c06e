"""Builds dist/codelace-box, the single executable, with PyInstaller (what `make binary` runs).

PyInstaller's scratch output goes to build/out/ (git-ignored); the spec is
build/codelace-box.spec. Prints the build time and the size of the result, then runs
`codelace-box version` once so a binary that cannot start fails the build.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "build" / "codelace-box.spec"
WORK_DIR = ROOT / "build" / "out"
DIST_DIR = ROOT / "dist"
BINARY = DIST_DIR / "codelace-box"


def pyinstaller_command(clean: bool) -> list[str]:
    """The PyInstaller invocation for our spec, scratch and output directories."""
    command = [
        sys.executable,
        "-m",
        "PyInstaller",
        str(SPEC),
        "--noconfirm",
        "--log-level",
        "WARN",
        "--distpath",
        str(DIST_DIR),
        "--workpath",
        str(WORK_DIR),
    ]
    return [*command, "--clean"] if clean else command


def build(clean: bool) -> Path:
    """Run PyInstaller; returns the executable's path or exits non-zero."""
    started = time.monotonic()
    result = subprocess.run(pyinstaller_command(clean), cwd=ROOT, check=False)
    if result.returncode != 0:
        sys.exit(f"error: PyInstaller failed with exit code {result.returncode}")
    if not BINARY.is_file():
        sys.exit(f"error: PyInstaller finished but {BINARY} is missing")
    size_mb = BINARY.stat().st_size / 1_000_000
    took = time.monotonic() - started
    print(f"built {BINARY.relative_to(ROOT)}: {size_mb:.1f} MB in {took:.0f} s", flush=True)
    check_starts(BINARY)
    return BINARY


def check_starts(binary: Path) -> None:
    """Run `codelace-box version` once, so a binary that cannot start fails the build."""
    started = time.monotonic()
    result = subprocess.run([str(binary), "version"], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"error: the built binary does not start:\n{result.stderr.strip()}")
    print(f"{result.stdout.strip()} starts (first start {time.monotonic() - started:.2f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clean", action="store_true", help="Empty PyInstaller's caches first.")
    build(parser.parse_args().clean)


if __name__ == "__main__":
    main()
