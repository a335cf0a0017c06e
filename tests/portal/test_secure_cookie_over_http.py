"""A box whose public URL is https gives its session cookie `Secure`, which a browser keeps only
from a secure page: reached over plain http at another name (the VM's address on the LAN, the
box's port before the TLS proxy is set up), every sign-in "succeeded" and the browser dropped
the cookie, so the page went back to an empty sign-in form without a word, a code spent each
time. The sign-in is refused up front instead, saying where the portal works."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

import tests.portal.browser as chromium
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.smtp_server import RecordingSmtpServer
from tests.fakes.stripe_double import StripeDouble
from tests.portal.conftest import PortalBox, start_box
from tests.support import TLS

PUBLIC = "https://llm.example.com"
LAN_NAME = "box.test"  # a name that is not loopback, resolved to 127.0.0.1 by the browser only


@pytest.fixture(scope="module")
def tls_box(
    tmp_path_factory: pytest.TempPathFactory,
    smtp: RecordingSmtpServer,
    stripe_double: StripeDouble,
    fake: FakeOpenAI,
) -> Iterator[PortalBox]:
    folder = tmp_path_factory.mktemp("secure-cookie")
    box = start_box(folder, smtp, stripe_double, fake, server={"public_url": PUBLIC})
    yield box
    box.server.stop()


def plain_http(box: PortalBox, host: str) -> dict[str, str]:
    """What a browser on http://host:port sends with the page's calls."""
    where = f"{host}:{box.url.rsplit(':', 1)[1]}"
    return {"origin": f"http://{where}", "host": where}


def test_a_sign_in_from_a_plain_http_page_is_refused_before_a_code_is_spent(
    tls_box: PortalBox,
) -> None:
    email = "lan@portal.test"
    with tls_box.http() as client:
        asked = client.post(
            "/portal/api/signin/code", json={"email": email}, headers=plain_http(tls_box, LAN_NAME)
        )
        assert asked.status_code == 403, asked.text
        error = asked.json()["error"]
        assert error["code"] == "https_required"
        assert PUBLIC in error["message"] and "https" in error["message"]
        assert tls_box.smtp.messages_to(email) == []  # no mail for a sign-in that cannot hold
        # a code asked from the https page, then typed into the plain http one: refused, not used
        secure = {"origin": PUBLIC, "host": "llm.example.com"}
        assert client.post("/portal/api/signin/code", json={"email": email}, headers=secure)
        code = tls_box.smtp.wait_for(email).code
        body = {"email": email, "code": code}
        lan = plain_http(tls_box, LAN_NAME)
        refused = client.post("/portal/api/signin/verify", json=body, headers=lan)
        assert refused.status_code == 403 and "https_required" in refused.text
        done = client.post("/portal/api/signin/verify", json=body, headers=secure)
        assert done.status_code == 200, done.text


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]"])
def test_a_loopback_page_over_http_still_signs_in(tls_box: PortalBox, host: str) -> None:
    """Browsers keep Secure cookies from loopback pages (a tunnel to the box's port)."""
    with tls_box.http() as client:
        email = f"loop{len(host)}@portal.test"
        answer = tls_box.verify_answer(client, email, plain_http(tls_box, host))
        assert answer.status_code == 200, answer.text
        assert "; secure" in answer.headers["set-cookie"].lower()


def test_the_sign_in_page_says_where_the_portal_works(
    tls_box: PortalBox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In Chromium at http://box.test:port the page says so at the first step."""
    chromium.require_browser()
    rules = f"--host-resolver-rules=MAP {LAN_NAME} 127.0.0.1 , MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"
    flags = tuple(f for f in chromium.FLAGS if not f.startswith("--host-resolver-rules"))
    monkeypatch.setattr(chromium, "FLAGS", (*flags, rules))
    browser = chromium.Browser()
    try:
        browser.driver.get(tls_box.url.replace("127.0.0.1", LAN_NAME) + "/signin")
        browser.wait_for(lambda: browser.field("Email address"), "the sign-in form")
        browser.field("Email address").send_keys("page@portal.test")
        browser.button("Email me a code").click()
        said = browser.wait_for(lambda: browser.css("p.error").text, "the refusal")
        assert PUBLIC in said, said
        assert tls_box.smtp.messages_to("page@portal.test") == []
    finally:
        browser.quit()


def test_a_program_without_origin_is_not_a_browser_and_signs_in(tls_box: PortalBox) -> None:
    with httpx.Client(base_url=tls_box.url, timeout=30, verify=TLS) as client:
        email = "program@portal.test"
        assert client.post("/portal/api/signin/code", json={"email": email}).status_code == 200
        code = tls_box.smtp.wait_for(email).code
        answer = client.post("/portal/api/signin/verify", json={"email": email, "code": code})
        assert answer.status_code == 200, answer.text
