"""What the portal says about time, read in a browser whose clock is not UTC (Honolulu,
UTC-10): the sign-in code's lifetime as the mail states it, and the chart's days."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.smtp_server import RecordingSmtpServer
from tests.fakes.stripe_double import StripeDouble
from tests.portal.browser import Browser
from tests.portal.conftest import PortalBox, sign_in, start_box

CODE_TTL_SEC = 90  # a minute and a half: no whole number of minutes


@pytest.fixture(scope="module")
def box(
    tmp_path_factory: pytest.TempPathFactory,
    smtp: RecordingSmtpServer,
    stripe_double: StripeDouble,
    fake: FakeOpenAI,
) -> Iterator[PortalBox]:
    folder: Path = tmp_path_factory.mktemp("portal-time")
    started = start_box(folder, smtp, stripe_double, fake, auth={"otp_ttl_sec": CODE_TTL_SEC})
    yield started
    started.server.stop()


@pytest.fixture
def honolulu(fresh_browser: Browser) -> Iterator[Browser]:
    """The signed-out browser with its clock in Pacific/Honolulu (UTC-10)."""
    driver = fresh_browser.driver
    driver.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "Pacific/Honolulu"})
    yield fresh_browser
    driver.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": ""})


def test_the_code_step_states_the_lifetime_the_mail_does(honolulu: Browser, box: PortalBox) -> None:
    """With auth.otp_ttl_sec = 90 the mail said "expires in 90 seconds" and the page "works for
    2 minutes" (Math.round of 1.5): a person who waited a minute and three quarters, as the
    page allowed, met "the sign-in code has expired". 60 seconds read "1 minutes"."""
    browser, email = honolulu, "lifetime@portal.test"
    browser.driver.get(box.url + "/signin")
    browser.wait_for(lambda: browser.field("Email address"), "the sign-in form")
    browser.field("Email address").send_keys(email)
    browser.button("Email me a code").click()
    browser.wait_for(lambda: browser.field("Sign-in code"), "the code step")
    mailed = re.search(r"expires in ([^.]+)\.", box.smtp.wait_for(email).body)
    assert mailed is not None and mailed[1] == "90 seconds"
    said = browser.main_text()
    assert f"the code works for {mailed[1]}." in said, said
    assert "minute" not in said, said


@pytest.fixture
def kiritimati(fresh_browser: Browser) -> Iterator[Browser]:
    """The signed-out browser with its clock in Pacific/Kiritimati (UTC+14): from 10:00 UTC on,
    its date is the day after the UTC one, and on the 1st before 10:00 UTC its month too."""
    driver = fresh_browser.driver
    driver.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "Pacific/Kiritimati"})
    yield fresh_browser
    driver.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": ""})


def test_the_month_and_the_days_say_they_are_utc(kiritimati: Browser, box: PortalBox) -> None:
    """The month's spend and the chart's days are UTC ones (the server's; the request times
    say "UTC"), but read "Spent this month" and "Daily spend, last 30 days": in UTC+14 on the
    morning of the 1st the page showed last month's spend as this month's, and the chart's last
    day was the person's yesterday, with nothing to say why."""
    browser = kiritimati
    sign_in(browser, box, "utc-days@portal.test")
    month_card = browser.wait_for(
        lambda: [c.text for c in browser.all(".card") if "this month" in c.text.lower()],
        "the month's card",
    )
    assert "UTC" in month_card[0], month_card
    browser.driver.get(box.url + "/usage")
    heading = browser.wait_for(
        lambda: [h.text for h in browser.all("h2") if h.text.startswith("Daily spend")],
        "the chart's heading",
    )
    assert "UTC" in heading[0], heading
    chart = browser.css("svg.chart")
    assert "UTC" in (chart.get_attribute("aria-label") or "")
    cards = [c.text for c in browser.all(".card") if "month" in c.text.lower()]
    assert cards and all("UTC" in c for c in cards), cards
