"""The portal behind a proxy that answers for the box: a sign-in wall in front of it (an SSO
proxy whose own session ended) turns a call into a redirect to its HTML login page, which the
browser's fetch follows to a 200 that is no JSON; the page says so rather than hang."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.portal.browser import Browser
from tests.portal.conftest import PortalBox
from tests.support import TLS

WALL = b"<!doctype html><title>Sign in to the proxy</title><p>Sign in to go on.</p>"


def _walled_proxy(box_url: str, walled: str) -> ThreadingHTTPServer:
    """A loopback proxy to the box; GETs of paths starting with `walled` go to its login page."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            if self.path.startswith(walled):
                self._answer(302, b"", {"location": "/proxy-login"})
            elif self.path == "/proxy-login":
                self._answer(200, WALL, {"content-type": "text/html"})
            else:
                got = httpx.get(
                    box_url + self.path,
                    headers={"cookie": self.headers.get("cookie", "")},
                    verify=TLS,
                )
                kept = ("content-type", "content-security-policy", "cache-control")
                self._answer(
                    got.status_code,
                    got.content,
                    {k: got.headers[k] for k in kept if k in got.headers},
                )

        def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


@pytest.fixture
def walled(box: PortalBox) -> Iterator[str]:
    """The proxy's URL; its /portal/api/session answers with the login page."""
    server = _walled_proxy(box.url, "/portal/api/session")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_a_session_call_answered_with_a_login_page_says_so(cdp: Browser, walled: str) -> None:
    browser = cdp
    browser.driver.get(walled + "/keys")
    alert = browser.wait_for(lambda: browser.css("main [role=alert]"), "the error")
    assert "could not be read" in alert.text, alert.text
    assert "Loading" not in browser.main_text()
    assert browser.css("main a").get_attribute("href") == walled + "/keys"
