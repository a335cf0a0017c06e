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
from tests.portal.conftest import PortalBox, start_box

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
