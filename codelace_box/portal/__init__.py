"""The portal's static files (HTML shell, CSS, JS modules, icon) and their content digest.

No build step: the files under static/ are served as they are. Every asset URL carries the
digest of the whole folder (/portal/assets/<digest>/<name>), so a JS module's relative imports
stay inside one immutable version and a browser may cache them for a year; the HTML shell,
which names the digest, is never cached. The shell's links and asset URLs start with the path
the box is served under (`{{BASE}}`: server.base_path, "" at the root), which its scripts read
from its `codelace-base` meta tag.
"""

from __future__ import annotations

import hashlib
import html
from dataclasses import dataclass
from functools import cache
from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "static"
SHELL = "index.html"
ASSET_BASE = "/portal/assets"
CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".html": "text/html; charset=utf-8",
}


@dataclass(frozen=True)
class Assets:
    digest: str
    files: dict[str, bytes]  # name (relative to static/) -> content
    shell: bytes  # index.html with the asset base filled in, {{BASE}} still to fill

    def shell_at(self, base_path: str) -> bytes:
        """The HTML shell for a box served under `base_path` (`/gateway`; "" at the root)."""
        return self.shell.replace(b"{{BASE}}", html.escape(base_path).encode())

    def content_type(self, name: str) -> str:
        """The Content-Type of an asset by its suffix."""
        return CONTENT_TYPES.get(Path(name).suffix, "application/octet-stream")


@cache
def load_assets(folder: Path = STATIC_DIR) -> Assets:
    """Read every static file once per process and hash them together."""
    files = {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }
    digest = hashlib.sha256()
    for name, content in files.items():
        digest.update(name.encode() + b"\0" + hashlib.sha256(content).digest())
    short = digest.hexdigest()[:16]
    shell = files.pop(SHELL).replace(b"{{ASSETS}}", f"{{{{BASE}}}}{ASSET_BASE}/{short}".encode())
    return Assets(short, files, shell)
