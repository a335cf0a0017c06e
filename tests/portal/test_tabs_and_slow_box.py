"""The portal when its session changes under an open tab (signed out, or out and in again, in
another tab) and when the box stops answering a call: each tab's next action says what
happened, in a real browser on a real box; and the box's rule behind it, that a read names the
session its page was drawn for."""

from __future__ import annotations

import time

from tests.portal.browser import Browser
from tests.portal.conftest import PortalBox, keys_here_signed_out_in_a_new_tab, sign_in, wait_page

ENDED = "Your session has ended"
CHANGED = "signed in again in another tab"


def _signed_in(browser: Browser) -> bool:
    """Whether the browser holds a session now, asked of the box from the page's origin."""
    return bool(
        browser.driver.execute_async_script(
            "const done = arguments[0];"
            "fetch('/portal/api/session').then((r) => r.json()).then((s) => done(s.signed_in))"
        )
    )


def test_sign_out_in_a_tab_left_behind_a_new_sign_in_signs_the_browser_out(
    cdp: Browser, box: PortalBox
) -> None:
    """Tab A was drawn for a session that another tab has since replaced (signed out and in
    again). Sign out in tab A: its token was refused, the page was drawn anew, still signed
    in, so Sign out silently did nothing. Now the browser is signed out."""
    browser = cdp
    email = "stale-signout@portal.test"
    sign_in(browser, box, email)
    first = keys_here_signed_out_in_a_new_tab(browser, box)
    sign_in(browser, box, email)
    driver = browser.driver
    driver.switch_to.window(first)
    browser.css("#signout").click()
    browser.wait_for(lambda: browser.field("Email address"), "the sign-in form")
    assert driver.current_url.startswith(box.url + "/signin")
    assert not _signed_in(browser), "still signed in after Sign out"


def test_a_tab_whose_session_ended_says_so_on_the_sign_in_page(
    cdp: Browser, box: PortalBox
) -> None:
    """Signed out (and in, and out again) in another tab: this tab's next action leads to the
    sign-in page, which says the session ended, not a bare form with no reason given."""
    browser = cdp
    email = "ended-notice@portal.test"
    sign_in(browser, box, email)
    first = keys_here_signed_out_in_a_new_tab(browser, box)
    sign_in(browser, box, email)
    browser.css("#signout").click()
    browser.wait_for(lambda: browser.driver.current_url == box.url + "/signin", "the sign-out")
    driver = browser.driver
    driver.switch_to.window(first)
    browser.field("Name of the new key").send_keys("after sign-out")
    browser.button("Create key").click()
    browser.wait_for(lambda: browser.field("Email address"), "the sign-in form")
    assert driver.current_url == box.url + "/signin?next=%2Fkeys"
    alert = browser.wait_for(lambda: browser.css("main [role=alert]"), "why")
    assert ENDED in alert.text
    driver.refresh()  # said once: a reload of the sign-in page is a plain one
    browser.wait_for(lambda: browser.field("Email address"), "the sign-in form")
    assert ENDED not in browser.main_text()


def test_a_tab_whose_session_ended_says_so_when_it_moves_on_or_reloads(
    cdp: Browser, box: PortalBox
) -> None:
    """Signed out in another tab: this tab's next step may be a link of its menu or a reload,
    not a button. Both lead to the sign-in page saying the session ended (they led to a bare
    sign-in form), and signing in leads back to the page asked for."""
    browser = cdp
    email = "ended-moving@portal.test"
    sign_in(browser, box, email)
    first = keys_here_signed_out_in_a_new_tab(browser, box)
    driver = browser.driver
    driver.switch_to.window(first)
    browser.click(lambda: driver.find_element("link text", "Usage"), "the Usage link")
    alert = browser.wait_for(lambda: browser.css("main [role=alert]").text, "why")
    assert ENDED in alert
    assert driver.current_url == box.url + "/signin?next=%2Fusage"
    sign_in(browser, box, email)
    driver.get(box.url + "/billing")
    wait_page(browser, "Billing")
    keys_here_signed_out_in_a_new_tab(browser, box)
    driver.switch_to.window(driver.window_handles[0])
    driver.refresh()
    alert = browser.wait_for(lambda: browser.css("main [role=alert]").text, "why")
    assert ENDED in alert
    assert driver.current_url == box.url + "/signin?next=%2Fkeys"


def test_a_tab_drawn_anew_for_a_new_sign_in_says_what_was_not_done(
    cdp: Browser, box: PortalBox
) -> None:
    """Another person signed in in another tab: this tab's Create key is not done (on either
    account), and the page drawn anew says so, rather than silently showing the other
    account's keys page with the typed name gone."""
    browser = cdp
    sign_in(browser, box, "first-person@portal.test")
    first = keys_here_signed_out_in_a_new_tab(browser, box)
    sign_in(browser, box, "second-person@portal.test")
    driver = browser.driver
    driver.switch_to.window(first)
    driver.execute_script("window.drawnBefore = true")
    browser.field("Name of the new key").send_keys("typed in the old tab")
    browser.button("Create key").click()
    browser.wait_for(
        lambda: driver.execute_script("return window.drawnBefore === undefined"), "a new page"
    )
    wait_page(browser, "API keys")
    alert = browser.wait_for(lambda: browser.css("main [role=alert]"), "why")
    assert CHANGED in alert.text and "not done" in alert.text
    assert box.query("SELECT COUNT(*) FROM api_key WHERE name = 'typed in the old tab'") == [(0,)]


def test_a_tab_left_behind_another_persons_sign_in_shows_none_of_their_data(
    cdp: Browser, box: PortalBox
) -> None:
    """Tab A shows the first person's keys; another person signs in in tab B. Cancel in a
    key's form in tab A reloads the list: it read the list with the browser's cookie, the
    second person's, and drew their keys into the first person's page. The read is now
    refused for the page's old token, and the page is drawn anew, saying why."""
    browser = cdp
    first_email, second_email = "reader-one@portal.test", "reader-two@portal.test"
    for email, key in ((first_email, "mine"), (second_email, "theirs")):
        box.cli("users", "create", email)
        box.cli("keys", "create", email, "--name", key)
    sign_in(browser, box, first_email)
    first = keys_here_signed_out_in_a_new_tab(browser, box)
    sign_in(browser, box, second_email)
    driver = browser.driver
    driver.switch_to.window(first)
    driver.execute_script("window.drawnBefore = true")
    browser.css("button[aria-label='Rename key mine']").click()
    browser.click(lambda: browser.button("Cancel"), "Cancel")
    browser.wait_for(
        lambda: driver.execute_script("return window.drawnBefore === undefined"), "a new page"
    )
    alert = browser.wait_for(lambda: browser.css("main [role=alert]").text, "why")
    assert CHANGED in alert


def test_sign_out_the_box_does_not_answer_says_so_and_stays(cdp: Browser, box: PortalBox) -> None:
    """The sign-out call fails: the page says it did not sign out; it went to the sign-in page,
    which found the session alive and brought the signed-in page back, saying nothing."""
    browser = cdp
    sign_in(browser, box, "signout-fails@portal.test")
    driver = browser.driver
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*/portal/api/signout*"]})
    browser.css("#signout").click()
    alert = browser.wait_for(lambda: browser.css("header [role=alert]").text, "the error")
    assert "Not signed out" in alert and "cannot be reached" in alert
    assert driver.current_url == box.url + "/"
    assert browser.css("#signout").is_enabled()
    browser.console_errors()  # the blocked request is logged, by design


def _hold(browser: Browser, pattern: str) -> None:
    """From now on the browser holds requests to URLs like `pattern` unanswered (a box that
    stopped answering them); the cdp fixture lets them go."""
    browser.driver.execute_cdp_cmd("Fetch.enable", {"patterns": [{"urlPattern": pattern}]})


def test_a_change_the_box_never_answers_ends_with_a_message_and_the_button_back(
    cdp: Browser, box: PortalBox
) -> None:
    """Create key with no answer: after the page's timeout (20 s) the form says the box did not
    answer and Create key works again (it spun for ever, disabled)."""
    browser = cdp
    sign_in(browser, box, "no-answer@portal.test")
    browser.driver.get(box.url + "/keys")
    wait_page(browser, "API keys")
    _hold(browser, "*/portal/api/keys*")
    browser.field("Name of the new key").send_keys("never answered")
    browser.button("Create key").click()
    assert not browser.button("Create key").is_enabled()
    alert = browser.wait_for(lambda: browser.css("main [role=alert]").text, "the error", 30)
    assert "did not answer within 20 seconds" in alert, alert
    assert browser.button("Create key").is_enabled()


def test_a_page_whose_data_never_comes_says_so(cdp: Browser, box: PortalBox) -> None:
    """The overview call is never answered: after the timeout, the page's heading, the error
    and Try again, not 'Loading…' for ever."""
    browser = cdp
    sign_in(browser, box, "no-overview@portal.test")
    _hold(browser, "*/portal/api/overview*")
    browser.driver.get(box.url + "/billing")
    alert = browser.wait_for(lambda: browser.css("main [role=alert]").text, "the error", 30)
    assert "did not answer" in alert
    assert browser.css("h1").text == "Billing"
    assert "Loading" not in browser.main_text()
    assert browser.css("main a").text == "Try again"


def _calls(box: PortalBox, route: str) -> int:
    """How many calls of `route` the box's access log holds."""
    return box.server.log_path.read_text().count(f"POST {route} ")


def test_sign_in_and_sign_out_stay_disabled_while_the_browser_leaves(
    cdp: Browser, box: PortalBox
) -> None:
    """On a slow network the next page takes a while to come: Sign in (and Sign out) were
    enabled again the moment their call answered, so a second click sent the used code once
    more (its refusal flashed under the form) or a second sign-out. Now one call each."""
    browser = cdp
    email = "leaving@portal.test"
    driver = browser.driver
    driver.get(box.url + "/signin")
    browser.wait_for(lambda: browser.field("Email address"), "the form").send_keys(email)
    browser.button("Email me a code").click()
    code = browser.wait_for(lambda: browser.field("Sign-in code"), "the code step")
    code.send_keys(box.smtp.wait_for(email, count=1).code)
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 600, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    # A second click as soon as the button can take one again (long before the next page).
    again = """
        const button = arguments[0];
        new MutationObserver((_, observer) => {
          if (button.disabled) return;
          observer.disconnect();
          button.click();
        }).observe(button, {attributes: true, attributeFilter: ["disabled"]});
        button.click();
    """
    for button, route, page in (
        ("Sign in", "/portal/api/signin/verify", "Your account"),
        ("Sign out", "/portal/api/signout", "Sign in"),
    ):
        before = _calls(box, route)
        driver.execute_script(again, browser.button(button))
        wait_page(browser, page)
        time.sleep(1.5)  # time for a second call to reach the box, if one was sent
        assert _calls(box, route) == before + 1, f"{button}: a second call"


def test_a_double_click_or_enter_twice_on_create_key_makes_one_key(
    cdp: Browser, box: PortalBox
) -> None:
    """On a slow network, a double click on Create key and Enter pressed twice in the name
    field each make one key (the button is disabled while the call is out)."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    browser = cdp
    email = "double-create@portal.test"
    sign_in(browser, box, email)
    browser.driver.get(box.url + "/keys")
    wait_page(browser, "API keys")
    browser.driver.execute_cdp_cmd("Network.enable", {})
    browser.driver.execute_cdp_cmd(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 800, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    stored = 'SELECT COUNT(*) FROM api_key k JOIN "user" u ON u.id = k.user_id WHERE u.email = ?'
    browser.field("Name of the new key").send_keys("clicked")
    ActionChains(browser.driver).double_click(browser.button("Create key")).perform()
    browser.wait_for(lambda: browser.css("button[aria-label='Revoke key clicked']"), "the key")
    browser.field("Name of the new key").send_keys("entered", Keys.ENTER, Keys.ENTER)
    browser.wait_for(lambda: browser.css("button[aria-label='Revoke key entered']"), "the key")
    time.sleep(2)  # time for a second key, if a second call was sent
    assert box.query(stored, email) == [(2,)]


def test_a_read_for_another_session_is_refused(box: PortalBox) -> None:
    """Over HTTP: a portal read carrying a CSRF token is answered only for the session that
    token belongs to; with the right one, or none (a script, curl), as before."""
    with box.http() as client:
        token = box.sign_in_http(client, "read-token@portal.test")["csrf_token"]
        for path in ("/portal/api/overview", "/portal/api/keys", "/portal/api/usage",
                     "/portal/api/payments"):  # fmt: skip
            for sent, status in ((token, 200), (None, 200), ("0" * 64, 403), ("", 403)):
                headers = {} if sent is None else {"x-csrf-token": sent}
                answer = client.get(path, headers=headers)
                assert answer.status_code == status, (path, sent, answer.text)
                if status == 403:
                    assert answer.json()["error"]["code"] == "csrf_failed"


def test_an_answer_cut_off_by_the_timeout_says_so(cdp: Browser, box: PortalBox) -> None:
    """On a network so slow that the list of keys is still arriving when the page's timeout
    ends the call, the page says the box did not answer in time (it read the cut-off answer as
    no data, and said 'Cannot read properties of null')."""
    browser = cdp
    email = "trickle@portal.test"
    box.cli("users", "create", email)
    for n in range(12):
        box.cli("keys", "create", email, "--name", f"key number {n} " + "x" * 80)
    sign_in(browser, box, email)
    browser.driver.get(box.url + "/keys")
    wait_page(browser, "API keys")
    browser.driver.execute_cdp_cmd("Network.enable", {})
    browser.driver.execute_cdp_cmd(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": 120, "uploadThroughput": -1},
    )
    browser.css("article.key button[data-action='rename']").click()
    browser.click(lambda: browser.button("Cancel"), "Cancel")
    alert = browser.wait_for(lambda: browser.css("article.key [role=alert]").text, "why", 40)
    assert "did not answer within 20 seconds" in alert, alert
