"""The portal as a person meets it in the browser: a session ended in another tab, a server
that fails a call, a double click on the way to Stripe, a phone-width screen, the keyboard
after a key is revoked and Escape in a key's form."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.fakes.openai_upstream import Reply
from tests.portal.browser import Browser
from tests.portal.conftest import (
    MODEL,
    PortalBox,
    keys_here_signed_out_in_a_new_tab,
    sign_in,
    wait_page,
)


def _on_the_keys_page(browser: Browser, box: PortalBox, email: str, key_name: str) -> None:
    """A new account with one key of that name, signed in, on its keys page."""
    box.cli("users", "create", email)
    box.cli("keys", "create", email, "--name", key_name)
    sign_in(browser, box, email)
    browser.driver.get(box.url + "/keys")
    wait_page(browser, "API keys")


def test_a_session_ended_in_another_tab_sends_the_next_action_to_sign_in(
    cdp: Browser, box: PortalBox
) -> None:
    """Sign out in one tab; in the other, still showing the keys page, Create key leads to the
    sign-in page (not a bare 'not signed in' under a form that can never work)."""
    browser = cdp
    sign_in(browser, box, "two-tabs@portal.test")
    first = keys_here_signed_out_in_a_new_tab(browser, box)
    driver = browser.driver
    driver.switch_to.window(first)
    browser.field("Name of the new key").send_keys("after sign-out")
    browser.button("Create key").click()
    browser.wait_for(
        lambda: driver.current_url.startswith(box.url + "/signin"), "the way to sign in"
    )
    browser.wait_for(lambda: browser.field("Email address"), "the sign-in form")


def test_a_page_whose_data_cannot_be_loaded_says_so_and_nothing_else(
    cdp: Browser, box: PortalBox
) -> None:
    """The usage call fails (the box unreachable for it): the page has its heading and the
    error, not 'Loading…' left above the error."""
    browser = cdp
    sign_in(browser, box, "failing@portal.test")
    browser.driver.execute_cdp_cmd("Network.enable", {})
    browser.driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*/portal/api/usage*"]})
    browser.driver.get(box.url + "/usage")
    alert = browser.wait_for(lambda: browser.css("main [role=alert]"), "the error")
    assert "cannot be reached" in alert.text
    text = browser.main_text()
    assert "Loading" not in text, text
    assert browser.css("h1").text == "Usage"
    browser.console_errors()  # the blocked request is logged, by design


def test_pay_with_stripe_stays_disabled_while_the_browser_goes_to_stripe(
    cdp: Browser, box: PortalBox
) -> None:
    """While the browser is on its way to Checkout the button stays disabled: a second click
    opens no second Checkout Session."""
    browser = cdp
    email = "double-click@portal.test"
    sign_in(browser, box, email)
    browser.driver.get(box.url + "/billing")
    wait_page(browser, "Billing")
    browser.field("Amount in USD").send_keys("20")
    # A second click comes as soon as the page has said it is going to Stripe (the next task
    # of the page, long before the browser has left it).
    browser.driver.execute_script(
        """
        const pay = arguments[0];
        new MutationObserver((_, observer) => {
          if (!document.querySelector("main").textContent.includes("Taking you to Stripe")) return;
          observer.disconnect();
          setTimeout(() => pay.click(), 0);
        }).observe(document.querySelector("main"),
                   {subtree: true, childList: true, characterData: true});
        pay.click();
        """,
        browser.button("Pay with Stripe"),
    )

    def sessions() -> list[Any]:
        return [s for s in box.double.sessions.values() if s.get("customer_email") == email]

    browser.wait_for(sessions, "the checkout session")
    time.sleep(1.5)  # time for a second one, if the second click made one
    assert len(sessions()) == 1, "a second click opened a second Checkout Session"


def no_sideways_scroll(browser: Browser, what: str) -> None:
    """Nothing is wider than the 375 px screen (a phone would zoom the page out to fit it)."""
    wide = browser.driver.execute_script("return document.documentElement.scrollWidth")
    assert wide <= 375, f"{what}: the page is {wide} px wide on a 375 px screen"


def test_a_long_email_and_key_name_fit_a_phone_screen(cdp: Browser, box: PortalBox) -> None:
    """At 375 px no page scrolls sideways, with a long address and a long key name."""
    browser = cdp
    email = "averylongaddressforaphonescreentestpersonwhousesitdaily@portaltest.test"
    box.cli("users", "create", email)
    box.cli("keys", "create", email, "--name", "k" * 100)
    browser.driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 375, "height": 740, "deviceScaleFactor": 1, "mobile": True},
    )
    driver = browser.driver
    driver.get(box.url + "/signin")
    browser.wait_for(lambda: browser.field("Email address"), "the sign-in form")
    browser.field("Email address").send_keys(email)
    browser.button("Email me a code").click()
    browser.wait_for(lambda: browser.field("Sign-in code"), "the code step")
    no_sideways_scroll(browser, "the code step")
    sign_in(browser, box, email)
    no_sideways_scroll(browser, "home")
    for path, title in (("/keys", "API keys"), ("/usage", "Usage"), ("/billing", "Billing"),
                        ("/connect", "How to connect")):  # fmt: skip
        browser.driver.get(box.url + path)
        wait_page(browser, title)
        no_sideways_scroll(browser, path)


def test_after_a_revoke_the_keyboard_lands_on_the_word_that_it_is_revoked(
    cdp: Browser, box: PortalBox
) -> None:
    """The revoked key's buttons are gone; focus is not dropped to the top of the page."""
    from selenium.webdriver.common.keys import Keys

    browser = cdp
    email = "revoke-focus@portal.test"
    _on_the_keys_page(browser, box, email, "old")
    browser.css("button[aria-label='Revoke key old']").send_keys(Keys.ENTER)
    browser.wait_for(lambda: browser.button("Yes, revoke it"), "the confirmation")
    browser.button("Yes, revoke it").send_keys(Keys.ENTER)
    browser.wait_for(lambda: "is revoked" in browser.main_text(), "the revoke")
    # the word is said before the list is drawn anew; the keyboard goes to it once it is
    browser.wait_for(
        lambda: "is revoked" in browser.driver.switch_to.active_element.text, "the focus"
    )
    assert browser.driver.switch_to.active_element.tag_name != "body"


def test_escape_closes_a_keys_form_and_keeps_the_keyboard_place(
    cdp: Browser, box: PortalBox
) -> None:
    from selenium.webdriver.common.keys import Keys

    browser = cdp
    email = "escape@portal.test"
    _on_the_keys_page(browser, box, email, "esc")
    for opener, inside in (("Rename key esc", "Save name"), ("Revoke key esc", "Keep it")):
        browser.css(f"button[aria-label='{opener}']").send_keys(Keys.ENTER)
        browser.wait_for(lambda i=inside: browser.button(i), inside)
        browser.driver.switch_to.active_element.send_keys(Keys.ESCAPE)
        browser.wait_for(
            lambda o=opener: (
                browser.driver.switch_to.active_element.get_attribute("aria-label") == o
            ),
            f"focus back on {opener!r}",
        )
    assert browser.all("article.key form") == []


def test_signing_in_from_a_page_leads_back_to_that_page(cdp: Browser, box: PortalBox) -> None:
    """A bookmark of /billing (or the Stripe return page's link) with no session: sign in,
    and the billing page opens, not home; a next= that is not one of the pages leads home."""
    browser = cdp
    email = "deep-link@portal.test"
    driver = browser.driver
    driver.get(box.url + "/billing")
    browser.wait_for(lambda: browser.field("Email address"), "the sign-in form")
    browser.field("Email address").send_keys(email)
    browser.button("Email me a code").click()
    code_field = browser.wait_for(lambda: browser.field("Sign-in code"), "the code step")
    code_field.send_keys(box.smtp.wait_for(email, count=1).code)
    browser.button("Sign in").click()
    wait_page(browser, "Billing")
    assert driver.current_url == box.url + "/billing"
    driver.get(box.url + "/signin?next=//elsewhere.test/")
    wait_page(browser, "Your account")
    assert driver.current_url == box.url + "/"


def test_a_page_address_with_a_trailing_slash_shows_that_page(cdp: Browser, box: PortalBox) -> None:
    """/billing/ (a bookmark, a link typed by hand): the box serves the page there, but the
    page was drawn as home, and signed out it led to the sign-in page with no way back; it is
    the page its path names, under its canonical address."""
    browser = cdp
    driver = browser.driver
    driver.get(box.url + "/billing/")
    browser.wait_for(lambda: browser.field("Email address"), "the sign-in form")
    assert driver.current_url == box.url + "/signin?next=%2Fbilling"
    sign_in(browser, box, "trailing-slash@portal.test")
    pages = (("/keys/", "API keys"), ("/usage//", "Usage"), ("/connect/", "How to connect"))
    for path, title in pages:
        driver.get(box.url + path + "?x=1")
        wait_page(browser, title)
        assert driver.current_url == box.url + path.rstrip("/") + "?x=1"
        current = browser.css("nav a[aria-current=page]").get_attribute("href")
        assert current == box.url + path.rstrip("/")


def test_a_box_that_cannot_say_who_is_signed_in_leaves_no_bare_loading_page(
    cdp: Browser, box: PortalBox
) -> None:
    """The session call fails: a heading, the error and a way to try again, not 'Loading…'."""
    browser = cdp
    browser.driver.execute_cdp_cmd("Network.enable", {})
    browser.driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*/portal/api/session*"]})
    browser.driver.get(box.url + "/keys")
    alert = browser.wait_for(lambda: browser.css("main [role=alert]"), "the error")
    assert "cannot be reached" in alert.text
    assert "Loading" not in browser.main_text()
    assert browser.css("h1").text
    assert browser.css("main a").get_attribute("href") == box.url + "/keys"
    browser.console_errors()  # the blocked request is logged, by design


def test_a_page_whose_scripts_cannot_be_loaded_says_so(cdp: Browser, box: PortalBox) -> None:
    """One of the page's modules fails to load (the box failing, the connection cut): the page
    says so with a way to try again, not 'Loading...' for ever."""
    browser = cdp
    browser.driver.execute_cdp_cmd("Network.enable", {})
    browser.driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*/usage.js"]})
    browser.driver.get(box.url + "/keys")
    alert = browser.wait_for(lambda: browser.css("main [role=alert]"), "the error")
    assert "could not be loaded" in alert.text and "Loading" not in browser.main_text()
    assert browser.css("main").get_attribute("aria-busy") is None
    assert browser.css("main a").get_attribute("href") == box.url + "/keys"
    browser.console_errors()  # the blocked request is logged, by design


def test_the_payment_history_names_each_kind_in_words(cdp: Browser, box: PortalBox) -> None:
    """Credit the operator gave reads as such, not as the database's word 'admin'."""
    browser = cdp
    email = "kinds@portal.test"
    box.cli("users", "create", email)
    box.cli("credit", email, "5", "--reason", "welcome")
    sign_in(browser, box, email)
    browser.driver.get(box.url + "/billing")
    wait_page(browser, "Billing")
    cells = [c.text for c in browser.all("table tbody td")]
    assert "admin" not in cells, cells
    assert "Credit from the operator" in cells, cells


def test_a_long_payment_history_says_it_lists_the_newest_only(cdp: Browser, box: PortalBox) -> None:
    """The billing page lists an account's 50 newest payments: with 51, its rows added up to
    $50 under a balance of $51, and nothing said that older ones were left out."""
    browser = cdp
    email = "manypayments@portal.test"
    box.cli("users", "create", email)
    box.cli("credit", email, "1", "--reason", "the first")
    sign_in(browser, box, email)
    browser.driver.get(box.url + "/billing")
    wait_page(browser, "Billing")
    assert len(browser.all("table tbody tr")) == 1
    assert "older" not in browser.main_text()  # all of them are listed: nothing to say
    for n in range(50):
        box.cli("credit", email, "1", "--reason", f"credit {n}")
    browser.driver.refresh()
    wait_page(browser, "Billing")
    assert "Balance: $51.00" in browser.main_text()
    assert len(browser.all("table tbody tr")) == 50
    assert "Only the 50 newest payments are listed here." in (browser.main_text())


def test_a_key_without_a_limit_says_spent_not_spent_against_a_limit(
    cdp: Browser, box: PortalBox
) -> None:
    browser = cdp
    email = "no-limit@portal.test"
    _on_the_keys_page(browser, box, email, "free")
    terms = [t.text for t in browser.all("article.key dt")]
    assert "Spent against the limit" not in terms and "Spent with this key" in terms, terms


def test_the_chart_labels_are_readable_on_a_phone(cdp: Browser, box: PortalBox) -> None:
    """The chart is scaled to the screen; its dates and peak must not shrink below ~11 px
    (and stay inside its figure)."""
    browser = cdp
    browser.driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 375, "height": 740, "deviceScaleFactor": 1, "mobile": True},
    )
    sign_in(browser, box, "chart-phone@portal.test")
    browser.driver.get(box.url + "/usage")
    wait_page(browser, "Usage")
    sizes = browser.driver.execute_script(
        "return [...document.querySelectorAll('.chart-label')].map((t) => {"
        "  const box = t.getBoundingClientRect();"
        "  const fig = t.closest('figure').getBoundingClientRect();"
        "  return [box.height, box.top >= fig.top - 0.5 && box.bottom <= fig.bottom + 0.5]; })"
    )
    assert len(sizes) == 3
    assert all(height >= 11 for height, _ in sizes), sizes
    assert all(inside for _, inside in sizes), sizes


RECENT_ROWS = "[aria-label='Recent requests table'] tbody tr"  # not the daily spend table's


def test_recent_requests_name_each_status_in_words(cdp: Browser, box: PortalBox) -> None:
    """A request the client left before its answer (still charged what the provider made) says
    so in words, not the database's 'abandoned' (nor 'ok' for one that was answered)."""
    browser = cdp
    email, key = box.new_user("5")
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    box.fake.push(Reply(content="answered"))
    with box.http(key) as http:
        assert http.post("/v1/chat/completions", json=body).status_code == 200
    box.fake.push(Reply(delay_before=0.8))
    with box.http(key) as http, pytest.raises(httpx.ReadTimeout):
        http.post("/v1/chat/completions", json=body, timeout=0.3)
    statuses_stored = (
        'SELECT r.status FROM usage_record r JOIN "user" u ON u.id = r.user_id WHERE u.email = ?'
    )
    browser.wait_for(lambda: len(box.query(statuses_stored, email)) == 2, "the left request's row")
    sign_in(browser, box, email)
    browser.driver.get(box.url + "/usage")
    wait_page(browser, "Usage")
    statuses = [
        row.find_elements("css selector", "td")[-1].text for row in browser.all(RECENT_ROWS)
    ]
    assert statuses == ["Client left before the end", "Answered"], statuses


def test_a_page_left_open_across_a_new_sign_in_is_drawn_anew_not_refused(
    cdp: Browser, box: PortalBox
) -> None:
    """Signed out and in again in another tab, this tab's next change meets a new session: the
    page is drawn anew for it (who is signed in now), not 'missing or wrong CSRF token'."""
    browser = cdp
    email = "new-session@portal.test"
    sign_in(browser, box, email)
    first = keys_here_signed_out_in_a_new_tab(browser, box)
    driver = browser.driver
    sign_in(browser, box, email)
    driver.switch_to.window(first)
    driver.execute_script("window.drawnBefore = true")
    browser.field("Name of the new key").send_keys("stale tab")
    browser.button("Create key").click()
    browser.wait_for(
        lambda: driver.execute_script("return window.drawnBefore === undefined"), "a new page"
    )
    wait_page(browser, "API keys")
    assert "CSRF" not in browser.main_text()


def test_a_balance_of_a_million_fits_a_360_px_screen(cdp: Browser, box: PortalBox) -> None:
    """$1,000,000 of credit reads in full, on one line, on the home and billing pages of the
    narrowest phone the portal serves, with no sideways scroll."""
    browser = cdp
    email = "million@portal.test"
    box.cli("users", "create", email)
    box.cli("credit", email, "1000000", "--reason", "a large account")
    browser.driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 360, "height": 740, "deviceScaleFactor": 1, "mobile": True},
    )
    sign_in(browser, box, email)
    figure = browser.css(".card .figure")
    assert figure.text == "$1,000,000.00"
    assert figure.size["height"] < 50, "the balance broke over two lines"
    browser.driver.get(box.url + "/billing")
    wait_page(browser, "Billing")
    assert "Balance: $1,000,000.00" in browser.main_text()
    wide = browser.driver.execute_script("return document.documentElement.scrollWidth")
    assert wide <= 360, wide


def test_a_revoke_refused_for_an_ended_session_says_it_was_not_done(
    cdp: Browser, box: PortalBox
) -> None:
    """A person revoking a leaked key on a page whose session had ended (expired, or signed out
    in another tab) was sent to sign in with only "Your session has ended ... sign in again to
    go on": nothing said the key still works. A change refused so says it was not done; a page
    merely read (a link, a reload) keeps the plain words."""
    browser, email = cdp, "revoke-ended@portal.test"
    box.cli("users", "create", email)
    box.cli("keys", "create", email, "--name", "leaked")
    sign_in(browser, box, email)
    first = keys_here_signed_out_in_a_new_tab(browser, box)
    driver = browser.driver
    driver.switch_to.window(first)
    browser.click(lambda: browser.css("button[aria-label='Revoke key leaked']"), "Revoke")
    browser.button("Yes, revoke it").click()
    notice = browser.wait_for(lambda: browser.css("p.notice").text, "the sign-in page's notice")
    assert "was not done" in notice and "session has ended" in notice, notice
    assert box.query("SELECT revoked_at IS NULL FROM api_key WHERE name = 'leaked'") == [(1,)]
