"""The portal's rules at the HTTP level: the cookie, the server-side session and its end, CSRF
and Origin checks, CSP and framing headers, content-hashed caching, and the JSON API with
Bearer keys exactly as before (a cookie opens no key route, a key opens no portal route)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.smtp_server import RecordingSmtpServer
from tests.fakes.stripe_double import StripeDouble
from tests.portal.browser import luminance_spread
from tests.portal.conftest import PortalBox, start_box

PAGES = ("/", "/signin", "/keys", "/usage", "/billing", "/connect")


def signed_in(box: PortalBox, email: str) -> tuple[httpx.Client, str]:
    """A client holding a portal session, and the session's CSRF token."""
    client = box.http()
    body = box.sign_in_http(client, email)
    return client, str(body["csrf_token"])


def test_verify_sets_an_httponly_strict_cookie_and_mints_no_key(box: PortalBox) -> None:
    with box.http() as client:
        box.sign_in_http(client, "cookie@portal.test")
        verify = [c for c in client.cookies.jar if c.name == "codelace_session"]
        assert len(verify) == 1 and not verify[0].secure
    # the raw header, as the browser reads it
    with box.http() as client:
        answer = box.verify_answer(client, "raw@portal.test")
    header = answer.headers["set-cookie"].lower()
    assert "httponly" in header and "samesite=strict" in header and "path=/" in header
    assert "secure" not in header  # http://127.0.0.1: not https
    assert "max-age=604800" in header  # portal.session_hours = 168
    assert "api_key" not in answer.json() and "cl_" not in answer.text
    keys = box.query(
        'SELECT COUNT(*) FROM api_key k JOIN "user" u ON u.id = k.user_id WHERE u.email = ?',
        "raw@portal.test",
    )
    assert keys == [(0,)]
    stored = box.query("SELECT token_hash FROM portal_session")
    token = answer.cookies["codelace_session"]
    assert token not in str(stored)  # only its hash is kept


def test_the_cookie_is_secure_when_the_public_url_is_https(
    tmp_path: Path, smtp: RecordingSmtpServer, stripe_double: StripeDouble, fake: FakeOpenAI
) -> None:
    secure = start_box(
        tmp_path, smtp, stripe_double, fake, server={"public_url": "https://box.example.com"}
    )
    try:
        with secure.http() as client:
            tls = {"origin": "https://box.example.com"}
            answer = secure.verify_answer(client, "tls@portal.test", tls)
        assert answer.status_code == 200, answer.text
        assert "; secure" in answer.headers["set-cookie"].lower()
    finally:
        secure.server.stop()


def test_the_cookie_is_secure_behind_a_tls_proxy_it_trusts(
    tmp_path: Path, smtp: RecordingSmtpServer, stripe_double: StripeDouble, fake: FakeOpenAI
) -> None:
    """Behind a reverse proxy that ends TLS (server.proxies_count = 1, public_url left at its
    default), the proxy's X-Forwarded-Proto says the browser speaks https: the cookie is
    Secure. A client the box does not count as a proxy cannot turn it on or off."""
    behind = start_box(tmp_path, smtp, stripe_double, fake, server={"proxies_count": 1})
    proxied = {"x-forwarded-for": "203.0.113.9", "x-forwarded-proto": "https"}
    try:
        with behind.http() as client:
            headers = {**proxied, "origin": "https://box.example.com", "host": "box.example.com"}
            answer = behind.verify_answer(client, "tls@proxy.test", headers)
            assert answer.status_code == 200, answer.text
            assert "; secure" in answer.headers["set-cookie"].lower()
            csrf = answer.json()["csrf_token"]
            cookie = f"__Host-codelace_session={answer.cookies['__Host-codelace_session']}"
            client.cookies.clear()  # the proxy speaks plain http to the box: send it by hand
            out = client.post(
                "/portal/api/signout", headers={**headers, "x-csrf-token": csrf, "cookie": cookie}
            )
            assert out.status_code == 200, out.text
            assert "; secure" in out.headers["set-cookie"].lower()
        with behind.http() as client:  # plain http through the proxy: not Secure
            plain = {"x-forwarded-for": "203.0.113.9", "x-forwarded-proto": "http"}
            answer = behind.verify_answer(client, "plain@proxy.test", plain)
            assert answer.status_code == 200, answer.text
            assert "secure" not in answer.headers["set-cookie"].lower()
    finally:
        behind.server.stop()


def test_a_forwarded_proto_from_an_untrusted_client_changes_nothing(box: PortalBox) -> None:
    """Without server.proxies_count no one is a proxy: X-Forwarded-Proto is the client's word."""
    with box.http() as client:
        answer = box.verify_answer(client, "liar@portal.test", {"x-forwarded-proto": "https"})
    assert answer.status_code == 200, answer.text
    assert "secure" not in answer.headers["set-cookie"].lower()


def test_a_cookie_or_csrf_token_that_is_not_text_is_refused_not_a_500(box: PortalBox) -> None:
    """Bytes that are no UTF-8 in the cookie (401) or the CSRF header (403): refused like any
    wrong value."""
    with box.http() as client:
        answer = client.get(
            "/portal/api/overview", headers={"cookie": b"codelace_session=\xe9\xffabc"}
        )
        assert answer.status_code == 401, answer.text
    client, _ = signed_in(box, "bytes@portal.test")
    refused = client.post(
        "/portal/api/keys",
        json={"name": "x"},
        headers={"x-csrf-token": b"\xe9\xff", "origin": box.url.encode()},
    )
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_failed"
    bad_origin = {"origin": b"http://\xe9\xff"}
    for path, body in (("/portal/api/keys", {"name": "x"}), ("/portal/api/signin/code", {})):
        refused = client.post(path, json=body, headers=bad_origin)
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["code"] == "csrf_failed"
    client.close()


def test_sign_out_ends_the_session_on_the_server(box: PortalBox) -> None:
    client, csrf = signed_in(box, "signout@portal.test")
    cookie = client.cookies["codelace_session"]
    assert client.get("/portal/api/overview").status_code == 200
    out = client.post("/portal/api/signout", headers={"x-csrf-token": csrf, "origin": box.url})
    assert out.status_code == 200 and "max-age=0" in out.headers["set-cookie"].lower()
    with box.http() as replay:  # the old cookie, replayed: the session is gone
        replay.cookies.set("codelace_session", cookie)
        refused = replay.get("/portal/api/overview")
        assert refused.status_code == 401
        assert replay.get("/portal/api/session").json()["signed_in"] is False
    client.close()


def test_an_expired_session_opens_nothing(box: PortalBox) -> None:
    client, _ = signed_in(box, "expired@portal.test")
    import sqlite3

    with sqlite3.connect(box.db_path, timeout=10) as db:
        db.execute(
            "UPDATE portal_session SET expires_at = '2020-01-01 00:00:00' WHERE user_id = "
            "(SELECT id FROM \"user\" WHERE email = 'expired@portal.test')"
        )
    assert client.get("/portal/api/overview").status_code == 401
    assert client.get("/portal/api/session").json()["signed_in"] is False
    client.close()
    rows = "SELECT COUNT(*) FROM portal_session WHERE expires_at < '2021-01-01'"
    assert box.query(rows) == [(1,)]
    signed_in(box, "expired-cleanup@portal.test")[0].close()  # a new session sweeps old rows
    assert box.query(rows) == [(0,)]


def test_a_disabled_account_loses_its_session(box: PortalBox) -> None:
    """Disabling ends the account's portal sessions for good: enabling it again (after its
    keys were revoked, say, once someone else got in) does not bring them back, since nobody
    but their holder could end them otherwise and a session can mint keys."""
    client, _ = signed_in(box, "disabled@portal.test")
    assert client.get("/portal/api/overview").status_code == 200
    box.cli("users", "disable", "disabled@portal.test")
    assert client.get("/portal/api/overview").status_code == 401
    box.cli("users", "enable", "disabled@portal.test")
    assert client.get("/portal/api/overview").status_code == 401
    assert client.get("/portal/api/session").json()["signed_in"] is False
    client.close()
    sessions = box.query(
        'SELECT COUNT(*) FROM portal_session s JOIN "user" u ON u.id = s.user_id WHERE u.email = ?',
        "disabled@portal.test",
    )
    assert sessions == [(0,)]
    signed_in(box, "disabled@portal.test")[0].close()  # a new sign-in works again


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/portal/api/keys", {"name": "x"}),
        ("PATCH", "/portal/api/keys/00000000-0000-4000-8000-000000000000", {"name": "x"}),
        ("DELETE", "/portal/api/keys/00000000-0000-4000-8000-000000000000", None),
        ("POST", "/portal/api/topup", {"amount_usd": 20}),
        ("POST", "/portal/api/setup", None),
        ("POST", "/portal/api/signout", None),
    ],
)
def test_changes_without_the_csrf_token_or_from_another_origin_are_refused(
    box: PortalBox, method: str, path: str, body: dict[str, object] | None
) -> None:
    client, csrf = signed_in(box, f"csrf-{method.lower()}-{len(path)}@portal.test")
    cases = [
        {},
        {"x-csrf-token": "0" * 64},
        {"x-csrf-token": csrf, "origin": "http://evil.example"},
        {"x-csrf-token": csrf, "sec-fetch-site": "cross-site"},
        {"x-csrf-token": csrf, "sec-fetch-site": "same-site"},
    ]
    for headers in cases:
        answer = client.request(method, path, json=body, headers=headers)
        assert answer.status_code == 403, (headers, answer.text)
        assert answer.json()["error"]["code"] == "csrf_failed"
    assert client.get("/portal/api/session").json()["signed_in"] is True  # nothing changed
    assert box.query("SELECT COUNT(*) FROM api_key WHERE name = 'x'") == [(0,)]
    client.close()


def test_sign_in_from_another_origin_is_refused(box: PortalBox) -> None:
    with box.http() as client:
        answer = client.post(
            "/portal/api/signin/code",
            json={"email": "login-csrf@portal.test"},
            headers={"origin": "http://evil.example"},
        )
    assert answer.status_code == 403
    assert box.smtp.messages_to("login-csrf@portal.test") == []


def test_the_own_page_behind_an_unconfigured_tls_proxy_is_told_what_to_set(
    box: PortalBox,
) -> None:
    """Behind a reverse proxy that ends TLS, with neither server.public_url nor
    server.proxies_count set, the box cannot know it is reached at https://llm.example.com and
    refuses its own portal's sign-in. The browser says the call is its own page's
    (Sec-Fetch-Site: same-origin, which no page can forge): the refusal names the address the
    box takes for its own and the settings that fix it, rather than only refusing the site. A
    call another site's page makes is refused as before, naming no setting."""
    proxied = {"host": "llm.example.com", "x-forwarded-for": "203.0.113.7",
               "x-forwarded-proto": "https", "origin": "https://llm.example.com"}  # fmt: skip
    with box.http() as client:
        own = client.post(
            "/portal/api/signin/code",
            json={"email": "proxied@portal.test"},
            headers={**proxied, "sec-fetch-site": "same-origin"},
        )
        other = client.post(
            "/portal/api/signin/code",
            json={"email": "proxied@portal.test"},
            headers={"origin": "http://evil.example"},
        )
    assert own.status_code == 403 and own.json()["error"]["code"] == "csrf_failed"
    message = own.json()["error"]["message"]
    assert "https://llm.example.com" in message and box.url in message, message
    assert "server.public_url" in message and "server.proxies_count" in message, message
    assert other.status_code == 403
    assert "server." not in other.text and box.url not in other.text, other.text
    assert box.smtp.messages_to("proxied@portal.test") == []


def test_pages_carry_a_strict_csp_no_framing_and_no_store(box: PortalBox) -> None:
    with box.http() as client:
        for path in PAGES:
            page = client.get(path)
            assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
            csp = page.headers["content-security-policy"]
            assert "default-src 'self'" in csp and "script-src 'self'" in csp
            assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
            assert "http" not in csp  # no third-party origin
            assert page.headers["x-frame-options"] == "DENY"
            assert page.headers["cache-control"] == "no-store"  # no back/forward cache
            assert "<script>" not in page.text and "onclick" not in page.text
            assert re.findall(r"<script[^>]*>", page.text) == [
                f'<script src="{asset_base(page.text)}/boot.js">',
                f'<script type="module" src="{asset_base(page.text)}/main.js">',
            ]
        assert client.get("/portal/api/session").headers["cache-control"] == "no-store"
        refused = client.get("/portal/api/overview")  # an error answer carries them too
        assert refused.status_code == 401 and refused.headers["x-frame-options"] == "DENY"
        assert refused.headers["cache-control"] == "no-store"
        assert refused.json()["error"]["code"] == "not_signed_in"  # no API key was involved
        assert "x-frame-options" not in client.get("/v1/models").headers  # the API's own


def test_a_portal_path_with_no_route_or_method_carries_the_headers_too(box: PortalBox) -> None:
    """A 404 or 405 that Sanic's router answers before any portal handler (an unknown path
    under /portal/, a POST to a page) is a portal response too: CSP, no framing, no-store."""
    with box.http() as client:
        answers = [
            client.get("/portal/api/nope"),
            client.get("/portal/whatever.html"),
            client.post("/", headers={"origin": box.url}),
            client.put("/portal/api/keys"),
            client.get("/portal/api/topup"),
        ]
        for answer in answers:
            assert answer.status_code in (404, 405), answer.text
            headers = answer.headers
            assert "frame-ancestors 'none'" in headers.get("content-security-policy", "")
            assert headers.get("x-frame-options") == "DENY", answer.request.url
            assert headers.get("x-content-type-options") == "nosniff"
            assert headers.get("cache-control") == "no-store"
        assert "x-frame-options" not in client.get("/v1/nope").headers  # the API's own 404


def asset_base(html: str) -> str:
    found = re.search(r'href="(/portal/assets/[0-9a-f]{16})/app\.css"', html)
    assert found, html
    return found.group(1)


def test_assets_are_content_hashed_and_cached_immutable(box: PortalBox) -> None:
    with box.http() as client:
        base = asset_base(client.get("/").text)
        for name, kind in [("main.js", "text/javascript"), ("app.css", "text/css")]:
            asset = client.get(f"{base}/{name}")
            assert asset.status_code == 200 and asset.headers["content-type"].startswith(kind)
            assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
        stale = client.get("/portal/assets/0123456789abcdef/main.js")
        assert stale.status_code == 404 and "immutable" not in stale.headers["cache-control"]
        assert client.get(f"{base}/../../../etc/passwd").status_code == 404
        assert client.get(f"{base}/index.html").status_code == 404  # the shell is not an asset


def test_the_return_pages_run_no_script_and_lead_back(box: PortalBox) -> None:
    """Stripe's return pages carry the portal's headers: the success page's address holds a
    Checkout Session id, so no Referer may take it elsewhere, and nothing is sniffed."""
    with box.http() as client:
        pages = [client.get("/billing/cancel"), client.get("/billing/success?session_id=cs_x1")]
    for page in pages:
        csp = page.headers["content-security-policy"]
        assert csp.startswith("default-src 'none'") and "frame-ancestors 'none'" in csp
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "same-origin"
        assert page.headers["cross-origin-opener-policy"] == "same-origin"
        assert page.headers["cache-control"] == "no-store"
        assert 'href="/billing"' in page.text and "<script" not in page.text


def test_the_json_api_and_the_portal_do_not_open_each_other(box: PortalBox) -> None:
    box.cli("users", "create", "both@portal.test")
    key = box.cli("keys", "create", "both@portal.test").split()[0]
    bearer = {"authorization": f"Bearer {key}"}
    with box.http() as client:
        assert client.get("/api/v1/customer/balance", headers=bearer).status_code == 200
        assert client.get("/portal/api/overview", headers=bearer).status_code == 401
    client, _ = signed_in(box, "both@portal.test")
    assert client.get("/portal/api/overview").status_code == 200
    assert client.get("/api/v1/customer/balance").status_code == 401  # a cookie is no key
    assert client.get("/api/v1/auth/key").status_code == 401
    client.close()


def test_portal_enabled_false_serves_the_api_only(
    tmp_path: Path, smtp: RecordingSmtpServer, stripe_double: StripeDouble, fake: FakeOpenAI
) -> None:
    off = start_box(tmp_path, smtp, stripe_double, fake, portal={"enabled": False})
    try:
        with off.http() as client:
            assert client.get("/").status_code == 404
            assert client.get("/portal/api/session").status_code == 404
            assert "x-frame-options" not in client.get("/healthz").headers
            assert client.get("/v1/models").status_code == 200
            cancel = client.get("/billing/cancel")
            assert "close this page" in cancel.text and 'href="/billing"' not in cancel.text
    finally:
        off.server.stop()


def test_the_readme_shows_a_small_screenshot_of_the_portal() -> None:
    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text()
    assert "## The portal" in readme and "](docs/portal.png)" in readme
    png = (root / "docs" / "portal.png").read_bytes()
    assert len(png) < 100_000
    variance, levels = luminance_spread(png)
    assert variance > 50 and levels > 8


def test_the_access_line_of_a_portal_call_names_its_account(box: PortalBox) -> None:
    """As an API key's call does: the account's public id, never its email."""
    client, _ = signed_in(box, "logged@portal.test")
    assert client.get("/portal/api/keys").status_code == 200
    client.close()
    (uuid,) = box.query("SELECT uuid FROM user WHERE email = ?", "logged@portal.test")[0]
    # the access lines are written at the end of the loop's turn: wait for ours
    box.server.wait_for_log(rf"GET /portal/api/keys 200 \S+ model=- user={uuid} ", wait=10)
    lines = [line for line in box.server.log_text().splitlines() if "/portal/api/keys" in line]
    assert not any("logged@portal.test" in line for line in lines)


def test_a_public_url_spelt_with_capitals_or_its_default_port_still_lets_its_browser_in(
    tmp_path: Path, smtp: RecordingSmtpServer, stripe_double: StripeDouble, fake: FakeOpenAI
) -> None:
    """A browser's Origin is lower-case and leaves the default port out: a public_url written
    `https://Box.Example.com:443/` names the same origin, and its users must be able to sign
    in and make changes (behind a TLS proxy the box is not told about, the request's own
    scheme is http, so the public URL is what the Origin is checked against)."""
    spelt = start_box(
        tmp_path, smtp, stripe_double, fake, server={"public_url": "https://Box.Example.com:443/"}
    )
    try:
        with spelt.http() as client:
            browser = {"origin": "https://box.example.com", "host": "box.example.com"}
            answer = spelt.verify_answer(client, "spelt@portal.test", browser)
            assert answer.status_code == 200, answer.text
            cookie = f"__Host-codelace_session={answer.cookies['__Host-codelace_session']}"
            client.cookies.clear()
            change = {**browser, "x-csrf-token": answer.json()["csrf_token"], "cookie": cookie}
            made = client.post("/portal/api/keys", json={"name": "spelt"}, headers=change)
            assert made.status_code == 200, made.text
            other = {**change, "origin": "https://box.example.com.evil.test"}
            refused = client.post("/portal/api/keys", json={"name": "evil"}, headers=other)
            assert refused.status_code == 403, refused.text
    finally:
        spelt.server.stop()


def test_a_cookie_set_by_a_sibling_host_never_chooses_the_session(
    tmp_path: Path, smtp: RecordingSmtpServer, stripe_double: StripeDouble, fake: FakeOpenAI
) -> None:
    """Another host of the same site (evil.example.com beside box.example.com) can set cookies
    for the whole domain, `__Secure-` ones included, and with a longer path they are sent
    first. Over https the box's own cookie is `__Host-` (only the box itself can set it), and
    only that one is read: a tossed cookie neither replaces the signed-in person's session
    (their top-ups would credit the attacker) nor signs a signed-out browser in as the attacker."""
    site = start_box(
        tmp_path, smtp, stripe_double, fake, server={"public_url": "https://box.example.com"}
    )
    browser = {"origin": "https://box.example.com", "host": "box.example.com"}
    try:
        with site.http() as client:
            victim = site.verify_answer(client, "victim@portal.test", browser)
            client.cookies.clear()
            attacker = site.verify_answer(client, "attacker@portal.test", browser)
            client.cookies.clear()
        own_name, own_value = victim.headers["set-cookie"].split(";")[0].split("=", 1)
        assert own_name == "__Host-codelace_session"
        stolen = attacker.headers["set-cookie"].split(";")[0].split("=", 1)[1]
        tossed = f"__Secure-codelace_session={stolen}; codelace_session={stolen}"
        own = f"{own_name}={own_value}"
        with site.http() as client:
            for cookie in (f"{tossed}; {own}", f"{own}; {tossed}"):
                seen = client.get("/portal/api/session", headers={"cookie": cookie}).json()
                assert seen["email"] == "victim@portal.test", cookie
            alone = client.get("/portal/api/session", headers={"cookie": tossed}).json()
            assert alone["signed_in"] is False and "email" not in alone
    finally:
        site.server.stop()
