"""The portal's connect snippets (the base URLs it shows for the OpenAI SDK, Claude Code and
Codex) name the address the browser reached when `server.public_url` is unset: the request's
scheme and Host, a trusted proxy's X-Forwarded-Proto, X-Forwarded-Host and X-Forwarded-Port
read only as far as `server.proxies_count` says. They named the listen address
(`http://0.0.0.0:8080`, `http://127.0.0.1:8080`), useless to anyone reaching the box by a host
name; a proxy's port was dropped (https on 8443 named as on 443), and chained proxies'
comma-joined headers were shown as they came (`https, http://a.example, b.example`). Stripe's
return links, asked for from the portal, take the same address. A public_url set still wins
(tests/portal/test_idn_public_url.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.smtp_server import RecordingSmtpServer
from tests.fakes.stripe_double import StripeDouble
from tests.portal.conftest import PortalBox, start_box

FORWARDED = {"x-forwarded-for": "203.0.113.9", "x-forwarded-proto": "https",
             "x-forwarded-host": "llm.example.test"}  # fmt: skip
# Two proxies in front (server.proxies_count = 2): each adds the address it was reached from.
CHAIN = {**FORWARDED, "x-forwarded-for": "203.0.113.9, 10.0.0.2"}
RETURN = "/billing/success?session_id={CHECKOUT_SESSION_ID}"


@dataclass
class Signed:
    """A portal session usable under either cookie name (the name follows the scheme)."""

    cookie: str
    csrf: str


def _sign_in(box: PortalBox, email: str, headers: dict[str, str]) -> Signed:
    box.cli("users", "create", email)
    with box.http() as client:
        verified = box.verify_answer(client, email, headers)
    assert verified.status_code == 200, verified.text
    [token] = verified.cookies.values()
    cookie = f"codelace_session={token}; __Host-codelace_session={token}"
    return Signed(cookie, verified.json()["csrf_token"])


def _shown_base(box: PortalBox, signed: Signed, headers: dict[str, str]) -> str:
    """The base URL the portal's overview gives a browser sending `headers` (its Host...)."""
    with box.http() as client:
        answer = client.get("/portal/api/overview", headers={**headers, "cookie": signed.cookie})
    assert answer.status_code == 200, answer.text
    base: str = answer.json()["base_url"]
    return base


def test_the_snippets_name_the_host_the_browser_reached(box: PortalBox) -> None:
    signed = _sign_in(box, "host@portal.test", {})
    assert _shown_base(box, signed, {"host": "llm.example.test:8443"}) == (
        "http://llm.example.test:8443")  # fmt: skip
    # no proxy trusted (proxies_count = 0): a client's forwarded headers change nothing
    assert _shown_base(box, signed, {**FORWARDED, "x-forwarded-port": "8443"}) == box.url


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory,
    smtp: RecordingSmtpServer,
    stripe_double: StripeDouble,
    fake: FakeOpenAI,
) -> Iterator[PortalBox]:
    """A box behind two proxies it trusts."""
    folder = tmp_path_factory.mktemp("proxied")
    started = start_box(folder, smtp, stripe_double, fake, server={"proxies_count": 2})
    yield started
    started.server.stop()


@pytest.fixture(scope="module")
def signed(site: PortalBox) -> Signed:
    return _sign_in(site, "proxy@portal.test", CHAIN)


def test_behind_a_trusted_proxy_they_name_the_address_it_was_reached_at(
    site: PortalBox, signed: Signed
) -> None:
    assert _shown_base(site, signed, CHAIN) == "https://llm.example.test"


@pytest.mark.parametrize(
    ("host", "proto", "port", "shown"),
    [
        ("gw.example", "https", "8443", "https://gw.example:8443"),
        ("gw.example", "https", "443", "https://gw.example"),  # the scheme's own: not written
        ("gw.example", "http", "80", "http://gw.example"),
        ("gw.example:9443", "https", "8443", "https://gw.example:9443"),  # a Host's port kept
        ("gw.example:443", "https", "8443", "https://gw.example"),
    ],
)
def test_a_proxy_on_another_port_is_named_with_its_forwarded_port(
    site: PortalBox, signed: Signed, host: str, proto: str, port: str, shown: str
) -> None:
    sent = {**CHAIN, "x-forwarded-host": host, "x-forwarded-proto": proto,
            "x-forwarded-port": port}  # fmt: skip
    assert _shown_base(site, signed, sent) == shown


def test_a_port_the_proxy_sends_beside_the_host_it_passes_on_is_read(
    site: PortalBox, signed: Signed
) -> None:
    """A proxy that keeps the browser's Host and says only the scheme and port (as AWS's)."""
    sent = {**CHAIN, "x-forwarded-port": "8443", "host": "gw.example"}
    del sent["x-forwarded-host"]
    assert _shown_base(site, signed, sent) == "https://gw.example:8443"


def test_chained_proxies_lists_give_the_entry_the_proxy_count_points_at(
    site: PortalBox, signed: Signed
) -> None:
    """Each proxy adds what it was reached at: with two trusted, the second entry from the
    end is what the browser reached (the first may be anything a client sent)."""
    sent = {**CHAIN, "x-forwarded-host": "spoofed.test, gw.example, inner.internal",
            "x-forwarded-proto": "http, https, http",
            "x-forwarded-port": "1, 8443, 8080"}  # fmt: skip
    assert _shown_base(site, signed, sent) == "https://gw.example:8443"
    # fewer entries than proxies (only the outer one writes them): the first, the outermost
    sent = {**CHAIN, "x-forwarded-host": "gw.example", "x-forwarded-port": "8443"}
    assert _shown_base(site, signed, sent) == "https://gw.example:8443"


@pytest.mark.parametrize(
    "forwarded_host",
    ["gw.example/evil", "gw example", "gw.example:99999", "a:8443:1", "user@gw.example", "<b>"],
)
def test_a_forwarded_host_that_is_no_host_gives_the_reached_host(
    site: PortalBox, signed: Signed, forwarded_host: str
) -> None:
    sent = {**CHAIN, "x-forwarded-host": forwarded_host, "host": "box.internal:8080"}
    assert _shown_base(site, signed, sent) == "https://box.internal:8080"


def test_behind_chained_tls_proxies_the_cookie_is_secure(site: PortalBox) -> None:
    """`https, http` (the outer proxy ended TLS) is https: the cookie gets `Secure` and its
    `__Host-` name, as behind one proxy."""
    site.cli("users", "create", "chain@portal.test")
    with site.http() as client:
        sent = {**CHAIN, "x-forwarded-proto": "https, http"}
        verified = site.verify_answer(client, "chain@portal.test", sent)
    assert verified.status_code == 200, verified.text
    cookie = verified.headers["set-cookie"]
    assert cookie.startswith("__Host-codelace_session=") and "Secure" in cookie, cookie


def test_the_page_at_the_proxys_port_may_change_things(site: PortalBox, signed: Signed) -> None:
    """The Origin check takes the same address: the page at https://gw.example:8443 was
    refused ("requests from https://gw.example:8443 are refused"), the box taking its own
    origin to be https://gw.example; another port still is refused."""
    sent = {**CHAIN, "x-forwarded-host": "gw.example", "x-forwarded-port": "8443",
            "x-csrf-token": signed.csrf, "cookie": signed.cookie}  # fmt: skip
    with site.http() as client:
        made = client.post("/portal/api/keys", json={"name": "gw"},
                           headers={**sent, "origin": "https://gw.example:8443"})  # fmt: skip
        assert made.status_code == 200, made.text
        other = client.post("/portal/api/keys", json={"name": "gw"},
                            headers={**sent, "origin": "https://gw.example"})  # fmt: skip
        assert other.status_code == 403, other.text


@pytest.mark.parametrize("path", ["/portal/api/topup", "/portal/api/setup"])
def test_stripe_returns_the_user_to_the_address_the_portal_was_reached_at(
    site: PortalBox, signed: Signed, path: str
) -> None:
    """The return links Stripe received (the real `stripe` library, against the double) name
    the page the browser is on: https on the proxy's 8443, not the listen address."""
    origin = "https://gw.example:8443"
    sent = {**CHAIN, "x-forwarded-host": "gw.example", "x-forwarded-port": "8443",
            "origin": origin, "x-csrf-token": signed.csrf,
            "cookie": signed.cookie}  # fmt: skip
    body = {"amount_usd": 20} if path.endswith("topup") else {}
    with site.http() as client:
        answer = client.post(path, json=body, headers=sent)
    assert answer.status_code == 200, answer.text
    session = site.double.session_by_url(answer.json()["checkout_url"])
    assert session["success_url"] == origin + RETURN
    assert session["cancel_url"].partition("?")[0] == origin + "/billing/cancel"  # (+ its query)


def test_a_host_name_with_an_underscore_is_the_address_reached(box: PortalBox) -> None:
    """A name with `_` (a Windows machine's, a Docker Compose service's: `dev_box`), which
    browsers open and name in Origin: the page at http://dev_box:8080 signed in and was shown
    its own address; the sign-in was refused ("requests from http://dev_box:8080 are
    refused"), the box reading no host in such a Host."""
    reached = {"host": "dev_box:8080", "origin": "http://dev_box:8080"}
    signed = _sign_in(box, "underscore@portal.test", reached)
    assert _shown_base(box, signed, {"host": "Dev_Box:8080"}) == "http://dev_box:8080"


def test_a_refused_own_page_is_told_the_address_reached(site: PortalBox, signed: Signed) -> None:
    """The box's own page (Sec-Fetch-Site: same-origin) at a port the proxy does not forward:
    the refusal named only the listen address and told an operator who had set
    `proxies_count` to set it; it names the address the box took from the proxy too, and the
    header that was missing."""
    sent = {**CHAIN, "x-forwarded-host": "gw.example", "origin": "https://gw.example:8443",
            "sec-fetch-site": "same-origin", "x-csrf-token": signed.csrf,
            "cookie": signed.cookie}  # fmt: skip
    with site.http() as client:
        refused = client.post("/portal/api/keys", json={"name": "gw"}, headers=sent)
    assert refused.status_code == 403, refused.text
    message = refused.json()["error"]["message"]
    assert "as reached, https://gw.example;" in message and "X-Forwarded-Port" in message, message
