"""The real Claude Code client (`claude -p`) with attachments that make a request large: a PDF
read with its Read tool goes up base64-encoded in the tool result, and every later request of
the session carries it again (screenshots add up the same way). Anthropic takes Messages
requests up to 32 MB; the box's own limit is `server.max_body_bytes` (10 MiB by default).
Skipped, as test_claude_code.py is, when no `claude` executable is installed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.anthropic_upstream import Reply, ToolUse
from tests.messages.conftest import MessagesBox
from tests.messages.test_claude_code import (  # noqa: F401
    CLAUDE,
    ROOT,
    claude_env_for,
    completions,
    default_alias,
    pytestmark,
)
from tests.support import ServerProcess, free_port

PDF_HEAD = b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
PDF_TAIL = (b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
            b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\n"
            b"trailer<</Root 1 0 R>>\n%%EOF\n")  # fmt: skip


def readme_body_limit() -> str:
    """The `max_body_bytes` the README's Claude Code section advises for attachments."""
    section = (ROOT / "README.md").read_text().split("\n## Claude Code\n")[1].split("\n## ")[0]
    (value,) = re.findall(r"max_body_bytes = (\d[\d_]*)", section)
    return value.replace("_", "")


def eight_megabyte_pdf(home: Path) -> Path:
    """A PDF of 8 MB (an embedded stream of noise): about 10.7 MB once base64-encoded."""
    noise = os.urandom(8_000_000)
    stream = b"4 0 obj<</Length %d>>stream\n%s\nendstream endobj\n" % (len(noise), noise)
    path = home / "scan.pdf"
    path.write_bytes(PDF_HEAD + stream + PDF_TAIL)
    return path


def read_the_pdf(base_url: str, home: Path, key: str) -> tuple[int, dict[str, object]]:
    """`claude -p` asked about scan.pdf against `base_url`: its exit status and JSON result."""
    env = {**claude_env_for(base_url, home), "ANTHROPIC_AUTH_TOKEN": key}
    assert CLAUDE is not None
    done = subprocess.run([CLAUDE, "-p", "What does scan.pdf say?", "--allowedTools", "Read",
                           "--output-format", "json"], env=env, cwd=home, capture_output=True,
                          text=True, timeout=90, check=False)  # fmt: skip
    return done.returncode, json.loads(done.stdout)


@pytest.fixture
def roomy(fresh: MessagesBox, tmp_path: Path) -> Iterator[ServerProcess]:
    """A second server on the same database with the README's body limit for Claude Code."""
    env = {"CODELACE_SERVER_MAX_BODY_BYTES": readme_body_limit()}
    server = ServerProcess(fresh.config, free_port(), env=env)
    server.log_path = tmp_path / "roomy.log"
    server.start("--port", str(server.port))
    yield server
    server.stop()


def test_a_pdf_over_the_default_limit_is_refused_before_the_upstream(
    fresh: MessagesBox, tmp_path: Path
) -> None:
    """Over 10 MiB: 413 request_too_large (no retry, nothing sent on); Claude Code words it as
    Anthropic's own limit ("Request too large (max 32MB)"), which the README explains."""
    _, key = fresh.new_key()
    home = tmp_path / "home"
    home.mkdir()
    read = ToolUse("toolu_pdf", "Read", {"file_path": str(eight_megabyte_pdf(home))})
    fresh.fake.script(Reply(text="", tool_uses=[read]), Reply(text="A scan."))
    status, answer = read_the_pdf(fresh.server.base_url, home, key)
    assert status == 1
    assert (answer["api_error_status"], answer["api_error_type"]) == (413, "request_too_large")
    assert len(completions(fresh)) == 1


def test_the_readmes_body_limit_lets_claude_code_read_the_pdf(
    fresh: MessagesBox, roomy: ServerProcess, tmp_path: Path
) -> None:
    email, key = fresh.new_key()
    home = tmp_path / "home"
    home.mkdir()
    read = ToolUse("toolu_pdf", "Read", {"file_path": str(eight_megabyte_pdf(home))})
    fresh.fake.script(Reply(text="", tool_uses=[read]), Reply(text="A scan."))
    status, answer = read_the_pdf(roomy.base_url, home, key)
    assert (status, answer["result"]) == (0, "A scan."), answer
    last = completions(fresh)[-1].body["messages"][-1]["content"][0]
    assert last["type"] == "tool_result" and last["content"][-1]["type"] == "document"
    assert [r["status"] for r in fresh.usage_rows(email)] == ["ok", "ok"]
