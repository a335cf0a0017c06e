"""The API's sign-in code routes (/api/v1/auth/otp/*) refuse what another site's page makes a
browser send. A form or a no-cors fetch needs no preflight, so without this any web page made
its visitors' browsers ask the box for codes to addresses it picked (each visitor a client
address of its own: the per-address limit never held; a box on 127.0.0.1 mailed for any site
its operator visited) and spend the guesses at someone's code. These routes have no CORS, so no
page of another site could ever read their answers: nothing a real client does is refused.
Clients that are no browser (the SDKs, curl) send neither Origin nor Sec-Fetch-Site."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.accounts.conftest import BoxClient, ServerFactory, smtp_sections
from tests.fakes.smtp_server import RecordingSmtpServer
from tests.support import ServerProcess

pytestmark = pytest.mark.timeout(60)
EVIL = "https://evil.example"
# What a browser sends on another site's `<form enctype="text/plain">` or no-cors fetch
CROSS_SITE = (
    {"origin": EVIL, "sec-fetch-site": "cross-site", "content-type": "text/plain"},
    {"origin": EVIL, "content-type": "text/plain"},  # a browser without Sec-Fetch-Site
    {"sec-fetch-site": "same-site", "content-type": "text/plain"},  # a sibling subdomain
    {"origin": "null", "content-type": "text/plain"},  # a sandboxed frame's
)


@pytest.fixture(scope="module")
def box(box_factory: ServerFactory, smtp: RecordingSmtpServer) -> ServerProcess:
    return box_factory(email=smtp_sections(smtp))


@pytest.fixture(scope="module")
def client(box: ServerProcess, smtp: RecordingSmtpServer) -> Iterator[BoxClient]:
    c = BoxClient(box, smtp)
    yield c
    c.close()


def post(client: BoxClient, path: str, body: str, headers: dict[str, str]) -> httpx.Response:
    return client.http.post(path, content=body.encode(), headers=headers)


def test_another_sites_page_gets_no_code_mailed(
    client: BoxClient, smtp: RecordingSmtpServer
) -> None:
    email = "cross-site-victim@example.com"
    body = f'{{"email": "{email}"}}'
    for headers in CROSS_SITE:
        refused = post(client, "/api/v1/auth/otp/request", body, headers)
        assert refused.status_code == 403, (headers, refused.text)
        assert refused.json()["error"]["code"] == "csrf_failed"
    # the one mail that arrives is the next request's (a script's: no browser headers)
    asked = post(client, "/api/v1/auth/otp/request", body, {"content-type": "text/plain"})
    assert asked.status_code == 200, asked.text
    smtp.wait_for(email, count=1)
    assert len(smtp.messages_to(email)) == 1


def test_another_sites_page_spends_no_guess_at_a_code(client: BoxClient) -> None:
    email = "cross-site-guesses@example.com"
    code = client.mailed_code(email)
    for headers in CROSS_SITE:  # the right code, even: refused, and not used up
        body = f'{{"email": "{email}", "code": "{code}"}}'
        refused = post(client, "/api/v1/auth/otp/verify", body, headers)
        assert refused.status_code == 403, (headers, refused.text)
        assert refused.json()["error"]["code"] == "csrf_failed"
    signed_in = client.verify(email, code)
    assert signed_in.status_code == 200, signed_in.text


def test_the_box_own_pages_and_typed_navigation_still_ask(
    box: ServerProcess, client: BoxClient
) -> None:
    """A page of the box itself (same origin) and a request the user made (`none`) pass."""
    email = "same-origin@example.com"
    body = f'{{"email": "{email}"}}'
    for headers in (
        {"origin": box.base_url, "sec-fetch-site": "same-origin"},
        {"sec-fetch-site": "none"},
    ):
        asked = post(client, "/api/v1/auth/otp/request", body, headers)
        assert asked.status_code == 200, (headers, asked.text)


def test_browser_extensions_and_desktop_apps_still_ask(client: BoxClient) -> None:
    """A browser extension (its own origin, allowed to the box by its host permissions, whatever
    Sec-Fetch-Site says) or a desktop app's web view is a client the user installed, not a page
    of another site: only the web's origins (http, https) and `null` are refused."""
    email = "extension@example.com"
    body = f'{{"email": "{email}"}}'
    for origin in (
        "chrome-extension://abcdefghijklmnop",
        "moz-extension://0a1b",
        "tauri://localhost",
    ):
        headers = {"origin": origin, "sec-fetch-site": "cross-site", "content-type": "text/plain"}
        asked = post(client, "/api/v1/auth/otp/request", body, headers)
        assert asked.status_code == 200, (origin, asked.text)


def test_a_page_the_browser_calls_same_origin_asks_behind_a_proxy(client: BoxClient) -> None:
    """A web app served at https://app.example that proxies /api/ to the box (TLS ended at the
    proxy, the Host kept, the box's public_url unset: the box sees http and its own address
    nowhere) calls these routes from its own origin: the browser says so (Sec-Fetch-Site:
    same-origin, which no page can forge), and it is no other site's page. Before these routes
    refused other sites it asked; it still does."""
    email = "proxied-app@example.com"
    body = f'{{"email": "{email}"}}'
    headers = {
        "host": "app.example",
        "origin": "https://app.example",
        "sec-fetch-site": "same-origin",
        "content-type": "application/json",
    }
    asked = post(client, "/api/v1/auth/otp/request", body, headers)
    assert asked.status_code == 200, asked.text
    code = client.mailed_code(email)
    body = f'{{"email": "{email}", "code": "{code}"}}'
    signed_in = post(client, "/api/v1/auth/otp/verify", body, headers)
    assert signed_in.status_code == 200, signed_in.text
