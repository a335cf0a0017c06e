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
