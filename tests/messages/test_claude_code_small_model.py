"""Claude Code's small model through the box: its WebFetch tool fetches a page itself, then asks
the small model (`/model haiku`'s, here named by ANTHROPIC_DEFAULT_HAIKU_MODEL as the README
shows) to answer the tool's prompt from it, a call of its own beside the session's model. A key
limited by `allowed_models` to the session's model alone gets that call refused (403), which
Claude Code hands the model as "Failed to authenticate. API Error: 403 ...": the README says to
allow the small model too. The page is served over https on loopback (WebFetch upgrades http),
its certificate given to Claude Code with NODE_EXTRA_CA_CERTS; WebFetch's check of the domain
with claude.ai is skipped (`skipWebFetchPreflight`), so only the box and the page are reached.
Skipped, as test_claude_code.py is, when no `claude` executable is installed.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from tests.fakes.anthropic_upstream import Reply, ToolUse
from tests.fakes.openai_upstream import Reply as OpenAIReply
from tests.fakes.smtp_server import make_self_signed_cert
from tests.messages.conftest import MODEL, OPENAI_MODEL, MessagesBox
from tests.messages.test_claude_code import (  # noqa: F401 (default_alias: an autouse fixture)
    ROOT,
    completions,
    default_alias,
    pytestmark,
    run_claude,
)

PAGE = b"<html><body><h1>Birds</h1><p>The bird of the day is the flamingo.</p></body></html>"


class _Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def page(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An https page on loopback: its URL and the certificate Claude Code is told to trust."""
    cert, key = make_self_signed_cert(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    server = HTTPServer(("127.0.0.1", 0), _Page)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_port}/birds", cert
    server.shutdown()
    server.server_close()


def fetch_with(box: MessagesBox, tmp_path: Path, key: str, page: tuple[str, Path]) -> str:
    """A session on MODEL whose first answer calls WebFetch on the page: what the tool gave
    back to the model (the session's second call)."""
    url, cert = page
    home = tmp_path / "home"
    (home / ".claude").mkdir(parents=True)
    (home / ".claude" / "settings.json").write_text(json.dumps({"skipWebFetchPreflight": True}))
    fetch = ToolUse("toolu_fetch", "WebFetch", {"url": url, "prompt": "Which bird?"})
    box.fake.script(Reply(text="", tool_uses=[fetch]), Reply(text="Done."))
    box.openai_fake.push(OpenAIReply(content="The flamingo."))
    auth = {"ANTHROPIC_AUTH_TOKEN": key, "ANTHROPIC_DEFAULT_HAIKU_MODEL": OPENAI_MODEL,
            "NODE_EXTRA_CA_CERTS": str(cert)}  # fmt: skip
    answer = run_claude(box, home, auth, "Which bird does the page name?",
                        "--allowedTools", "WebFetch")  # fmt: skip
    assert answer["result"] == "Done."
    calls = completions(box)
    assert len(calls) == 2
    (result,) = [b for b in calls[1].body["messages"][-1]["content"] if b["type"] == "tool_result"]
    return json.dumps(result)


def test_webfetch_asks_the_small_model(
    fresh: MessagesBox, tmp_path: Path, page: tuple[str, Path]
) -> None:
    email, _ = fresh.new_key()
    key = fresh.cli("keys", "create", email, "--models", f"{MODEL},{OPENAI_MODEL}")
    result = fetch_with(fresh, tmp_path, key.strip().splitlines()[0], page)
    assert "The flamingo." in result
    (summary,) = fresh.openai_fake.requests
    assert "flamingo" in json.dumps(summary.body["messages"])  # the page, for the small model
    assert sorted(r["model"] for r in fresh.usage_rows(email)) == [MODEL, MODEL, OPENAI_MODEL]


def test_a_key_without_the_small_model_fails_webfetch_as_the_readme_says(
    fresh: MessagesBox, tmp_path: Path, page: tuple[str, Path]
) -> None:
    email, _ = fresh.new_key()
    key = fresh.cli("keys", "create", email, "--models", MODEL).strip().splitlines()[0]
    result = fetch_with(fresh, tmp_path, key, page)
    assert "403" in result and f"may not call {OPENAI_MODEL}" in result, result
    assert fresh.openai_fake.requests == []
    assert [r["model"] for r in fresh.usage_rows(email)] == [MODEL, MODEL]
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "WebFetch" in readme and "Failed to authenticate. API Error: 403" in readme
