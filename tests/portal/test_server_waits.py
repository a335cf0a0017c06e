"""How long the page waits on a call that waits on an outside service (the mail server,
Stripe): the box says, from its own bounds (email.smtp_timeout_sec, its Stripe client's
timeout and retries), so a mail server configured as slow does not make the page give up
before the box has answered. The page's wait was fixed at 60 s whatever the box was told to
wait; a box told to wait 90 s for its mail server answered after the page had given up."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from codelace_box.api.portal import CALL_MARGIN_SEC, page_waits
from codelace_box.billing.stripe import STRIPE_LONGEST_SEC
from codelace_box.config import load_config
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.smtp_server import RecordingSmtpServer
from tests.fakes.stripe_double import StripeDouble
from tests.portal.browser import Browser
from tests.portal.conftest import PortalBox, sign_in, start_box, wait_page
from tests.support import TLS, write_config

pytestmark = pytest.mark.timeout(120)
SMTP_WAIT_SEC = 1  # the box's bound on its mail server; the page waits that and its margin


@pytest.fixture(scope="module")
def box(
    tmp_path_factory: pytest.TempPathFactory,
    smtp: RecordingSmtpServer,
    stripe_double: StripeDouble,
    fake: FakeOpenAI,
) -> Iterator[PortalBox]:
    folder = tmp_path_factory.mktemp("waits")
    started = start_box(
        folder, smtp, stripe_double, fake, email={"smtp_timeout_sec": SMTP_WAIT_SEC}
    )
    yield started
    started.server.stop()


def test_the_session_answer_says_how_long_the_slow_calls_may_take(box: PortalBox) -> None:
    with httpx.Client(base_url=box.url, verify=TLS) as client:
        session = client.get("/portal/api/session").json()
    assert session["wait_sec"] == {
        "mail": SMTP_WAIT_SEC + CALL_MARGIN_SEC,
        "stripe": STRIPE_LONGEST_SEC + CALL_MARGIN_SEC,
    }


def test_a_slow_mail_server_gets_a_longer_wait_than_the_page_had(tmp_path: Path) -> None:
    config = write_config(tmp_path / "codelace.toml", {"email": {"smtp_timeout_sec": 240}})
    waits = page_waits(load_config(str(config)))
    assert waits["mail"] > 240 and waits["stripe"] > STRIPE_LONGEST_SEC


def _hold(browser: Browser, pattern: str) -> None:
    """Requests to URLs like `pattern` are held unanswered (the cdp fixture lets them go)."""
    browser.driver.execute_cdp_cmd("Fetch.enable", {"patterns": [{"urlPattern": pattern}]})


def test_the_page_waits_for_the_mail_as_long_as_the_box_says(cdp: Browser, box: PortalBox) -> None:
    browser = cdp
    browser.driver.get(box.url + "/signin")
    browser.wait_for(lambda: browser.field("Email address"), "the sign-in form")
    _hold(browser, "*/portal/api/signin/code*")
    browser.field("Email address").send_keys("held@portal.test")
    browser.button("Email me a code").click()
    alert = browser.wait_for(lambda: browser.css("main [role=alert]").text, "the error", 40)
    seconds = SMTP_WAIT_SEC + CALL_MARGIN_SEC
    assert f"did not answer within {seconds} seconds" in alert, alert


def test_the_page_waits_for_stripe_as_long_as_the_box_says(cdp: Browser, box: PortalBox) -> None:
    browser = cdp
    sign_in(browser, box, "stripe-wait@portal.test")
    browser.driver.get(box.url + "/billing")
    wait_page(browser, "Billing")
    src = browser.driver.execute_script("return document.querySelector('script[type=module]').src")
    waited = browser.driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "import(arguments[0].replace(/[^/]*$/, 'api.js')).then((m) => done(m.waitMs('stripe')))",
        src,
    )
    assert waited == (STRIPE_LONGEST_SEC + CALL_MARGIN_SEC) * 1000
