"""A public_url whose host is an international domain written in Unicode (`bücher.example`):
a browser's Origin names that host in its ASCII form (`xn--bcher-kva.example`), and the portal
must take it as the box's own origin, and still refuse every other one."""

from __future__ import annotations

from pathlib import Path

from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.smtp_server import RecordingSmtpServer
from tests.fakes.stripe_double import StripeDouble
from tests.portal.conftest import start_box

ASCII_ORIGIN = "https://xn--bcher-kva.example"  # what a browser at https://bücher.example sends


def test_a_public_url_with_an_international_host_lets_its_browser_in(
    tmp_path: Path, smtp: RecordingSmtpServer, stripe_double: StripeDouble, fake: FakeOpenAI
) -> None:
    """Behind a TLS proxy the box is not told about (the request's own scheme is http), the
    public URL is what the Origin is checked against: written in Unicode, it is the same
    origin as the browser's ASCII one."""
    site = start_box(
        tmp_path, smtp, stripe_double, fake, server={"public_url": "https://Bücher.example"}
    )
    try:
        with site.http() as client:
            browser = {"origin": ASCII_ORIGIN, "host": "xn--bcher-kva.example"}
            answer = site.verify_answer(client, "idn@portal.test", browser)
            assert answer.status_code == 200, answer.text
            cookie = f"__Host-codelace_session={answer.cookies['__Host-codelace_session']}"
            client.cookies.clear()
            change = {**browser, "x-csrf-token": answer.json()["csrf_token"], "cookie": cookie}
            made = client.post("/portal/api/keys", json={"name": "idn"}, headers=change)
            assert made.status_code == 200, made.text
            shown = client.get("/portal/api/overview", headers={**change, "host": "other.test"})
            assert shown.json()["base_url"] == ASCII_ORIGIN  # the connect snippets' base
            for origin in ("https://xn--bcher-kva.example.evil.test", "https://bucher.example"):
                other = {**change, "origin": origin}
                refused = client.post("/portal/api/keys", json={"name": "evil"}, headers=other)
                assert refused.status_code == 403, (origin, refused.text)
    finally:
        site.server.stop()


def test_a_public_url_whose_path_is_not_ascii_gives_stripe_links_it_takes(
    tmp_path: Path, smtp: RecordingSmtpServer, stripe_double: StripeDouble, fake: FakeOpenAI
) -> None:
    """Served under a path written in Unicode (`/crédit`, a proxy's `location`), the box sent
    Stripe return links with that path as written, which Stripe refuses ("Non-ASCII characters
    in URLs must be percent-encoded"): no top-up could start. The path is sent percent-encoded,
    as a browser asks for it, and the portal's own links name it the same way."""
    site = start_box(
        tmp_path, smtp, stripe_double, fake, server={"public_url": "https://llm.example/crédit"}
    )
    base = "https://llm.example/cr%C3%A9dit"
    try:
        with site.http() as client:
            browser = {"origin": "https://llm.example", "host": "llm.example"}
            answer = site.verify_answer(client, "path-idn@portal.test", browser)
            assert answer.status_code == 200, answer.text
            cookie = f"__Host-codelace_session={answer.cookies['__Host-codelace_session']}"
            client.cookies.clear()
            change = {**browser, "x-csrf-token": answer.json()["csrf_token"], "cookie": cookie}
            started = client.post("/portal/api/topup", json={"amount_usd": "25"}, headers=change)
            assert started.status_code == 200, started.text
            session = site.double.session_by_url(started.json()["checkout_url"])
            assert session["success_url"].startswith(base + "/billing/success?")
            assert session["cancel_url"].startswith(base + "/billing/cancel?payment=")
            shown = client.get("/portal/api/overview", headers=change)
            assert shown.json()["base_url"] == base  # the connect snippets' base
            assert b'content="/cr%C3%A9dit"' in client.get("/keys", headers=browser).content
    finally:
        site.server.stop()
