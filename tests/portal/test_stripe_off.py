"""A box without Stripe: the page offers no payment it cannot take. The server says so
(overview's stripe_enabled); the home page as well as the billing page goes by it."""

from __future__ import annotations

from pathlib import Path

from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.smtp_server import RecordingSmtpServer
from tests.fakes.stripe_double import StripeDouble
from tests.portal.browser import Browser
from tests.portal.conftest import sign_in, start_box, wait_page


def test_without_stripe_no_page_offers_to_add_credit(
    tmp_path: Path,
    smtp: RecordingSmtpServer,
    stripe_double: StripeDouble,
    fake: FakeOpenAI,
    fresh_browser: Browser,
) -> None:
    off = start_box(
        tmp_path, smtp, stripe_double, fake, stripe={"secret_key": "", "webhook_secret": ""}
    )
    try:
        sign_in(fresh_browser, off, "no-stripe@portal.test")
        for path, title in (("/", "Your account"), ("/billing", "Billing")):
            fresh_browser.driver.get(off.url + path)
            wait_page(fresh_browser, title)
            shown = fresh_browser.main_text()
            assert "Add credit" not in shown and "Pay with Stripe" not in shown, (path, shown)
            assert fresh_browser.console_errors() == [], path
        fresh_browser.driver.get(off.url + "/")
        wait_page(fresh_browser, "Your account")
        links = [a.text for a in fresh_browser.driver.find_elements("css selector", "main a")]
        assert "Payment history" in links  # the balance card still leads to the billing page
    finally:
        off.server.stop()
