"""A browser that keeps no cookie for the box (cookies blocked for the site or for all sites,
a privacy extension, a proxy that strips Set-Cookie): the sign-in's answer was a success, the
browser dropped its cookie, and the page went back to an empty sign-in form without a word,
the code spent. The page now checks that the sign-in holds and says what to do."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.portal.browser import Browser, require_browser
from tests.portal.conftest import PortalBox, wait_page

BLOCK_ALL_COOKIES = {"profile.default_content_setting_values.cookies": 2}


@pytest.fixture(scope="module")
def no_cookies() -> Iterator[Browser]:
    require_browser()
    chromium = Browser(prefs=BLOCK_ALL_COOKIES)
    yield chromium
    chromium.quit()


def test_a_browser_that_keeps_no_cookie_is_told_so_at_the_code_step(
    no_cookies: Browser, box: PortalBox
) -> None:
    email = "no-cookies@portal.test"
    no_cookies.driver.get(box.url + "/signin")
    no_cookies.wait_for(lambda: no_cookies.field("Email address"), "the sign-in form")
    no_cookies.field("Email address").send_keys(email)
    no_cookies.button("Email me a code").click()
    code_field = no_cookies.wait_for(lambda: no_cookies.field("Sign-in code"), "the code step")
    code_field.send_keys(box.smtp.wait_for(email).code)
    no_cookies.button("Sign in").click()
    said = no_cookies.wait_for(lambda: no_cookies.css("main p.error").text, "the word why")
    assert "cookie" in said, said
    wait_page(no_cookies, "Check your mail")  # still the code step, not an empty sign-in form
    assert no_cookies.driver.current_url.endswith("/signin")
