"""The portal's connect snippets (the base URLs it shows for the OpenAI SDK, Claude Code and
Codex) name the address the browser reached when `server.public_url` is unset: the request's
scheme and Host, a trusted proxy's X-Forwarded-Proto and X-Forwarded-Host read only as far as
`server.proxies_count` says. They named the listen address (`http://0.0.0.0:8080`,
`http://127.0.0.1:8080`), useless to anyone reaching the box by a host name. A public_url set
still wins (tests/portal/test_idn_public_url.py)."""

from __future__ import annotations

from pathlib import Path

from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.smtp_server import RecordingSmtpServer
from tests.fakes.stripe_double import StripeDouble
from tests.portal.conftest import PortalBox, start_box

FORWARDED = {"x-forwarded-for": "203.0.113.9", "x-forwarded-proto": "https",
             "x-forwarded-host": "llm.example.test"}  # fmt: skip


def _shown_base(box: PortalBox, email: str, headers: dict[str, str]) -> str:
    """The base URL the portal's overview gives a browser sending `headers` (its Host...)."""
    with box.http() as client:
        verified = box.verify_answer(client, email, headers)
        assert verified.status_code == 200, verified.text
        cookies = "; ".join(f"{name}={value}" for name, value in verified.cookies.items())
        client.cookies.clear()  # (a Secure one, over https, the client would not send back)
        answer = client.get("/portal/api/overview", headers={**headers, "cookie": cookies})
    assert answer.status_code == 200, answer.text
    base: str = answer.json()["base_url"]
    return base


def test_the_snippets_name_the_host_the_browser_reached(box: PortalBox) -> None:
    box.cli("users", "create", "host@portal.test")
    assert _shown_base(box, "host@portal.test", {"host": "llm.example.test:8443"}) == (
        "http://llm.example.test:8443")  # fmt: skip
    # no proxy trusted (proxies_count = 0): a client's forwarded headers change nothing
    assert _shown_base(box, "host@portal.test", FORWARDED) == box.url


def test_behind_a_trusted_proxy_they_name_the_address_it_was_reached_at(
    tmp_path: Path, smtp: RecordingSmtpServer, stripe_double: StripeDouble, fake: FakeOpenAI
) -> None:
    site = start_box(tmp_path, smtp, stripe_double, fake, server={"proxies_count": 1})
    try:
        site.cli("users", "create", "proxy@portal.test")
        assert _shown_base(site, "proxy@portal.test", FORWARDED) == "https://llm.example.test"
    finally:
        site.server.stop()
