"""What a keyboard or screen-reader user meets when something happens on the portal: an error
is said at once and read with the field the keyboard is put on (Chromium's own accessibility
tree says what a screen reader hears), and a button that waits on the box gives the keyboard
back when it is done; the daily spend chart has its figures as a table too."""

from __future__ import annotations

from typing import Any

from tests.fakes.openai_upstream import Reply
from tests.portal.browser import Browser
from tests.portal.conftest import (
    MODEL,
    PortalBox,
    keys_here_signed_out_in_a_new_tab,
    sign_in,
    wait_page,
)


def press(browser: Browser, *keys: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(browser.driver).send_keys(*keys).perform()


def focused_ax(browser: Browser) -> dict[str, Any]:
    """The focused element as Chromium's accessibility tree has it: role, name, description
    and whether it is marked invalid (what a screen reader reads on focus)."""
    driver = browser.driver
    found = driver.execute_cdp_cmd("Runtime.evaluate", {"expression": "document.activeElement"})
    tree = driver.execute_cdp_cmd(
        "Accessibility.getPartialAXTree",
        {"objectId": found["result"]["objectId"], "fetchRelatives": False},
    )
    node = tree["nodes"][0]
    props = {p["name"]: p["value"].get("value") for p in node.get("properties", [])}
    return {
        "role": node.get("role", {}).get("value"),
        "name": node.get("name", {}).get("value", ""),
        "description": node.get("description", {}).get("value", ""),
        "invalid": props.get("invalid", "false"),
    }


def alert_text(browser: Browser) -> str:
    alert = browser.wait_for(lambda: browser.css("main [role=alert]"), "the error")
    browser.wait_for(lambda: alert.text, "the error's words")
    assert alert.get_attribute("aria-live") != "polite", "an alert said politely, after the rest"
    return str(alert.text)


def test_a_refused_address_and_code_are_read_with_their_field(
    fresh_browser: Browser, box: PortalBox
) -> None:
    """The keyboard goes back to the field the box refused; a screen reader reads the field, that
    it is invalid and why (not only an alert the focus move may cut off)."""
    browser = fresh_browser
    browser.driver.get(box.url + "/signin")
    wait_page(browser, "Sign in")
    from selenium.webdriver.common.keys import Keys

    press(browser, "not-an-address", Keys.ENTER)
    said = alert_text(browser)
    heard = focused_ax(browser)
    assert heard["name"] == "Email address", heard
    assert said in heard["description"] and heard["invalid"] == "true", heard
    browser.console_errors()  # the refused address is a 400 in the log, by design

    email = "keyboard-code@portal.test"
    browser.field("Email address").clear()
    browser.field("Email address").send_keys(email, Keys.ENTER)
    browser.wait_for(lambda: browser.field("Sign-in code"), "the code step")
    press(browser, "12", Keys.ENTER)
    said = alert_text(browser)
    heard = focused_ax(browser)
    assert heard["name"] == "Sign-in code", heard
    assert said in heard["description"] and heard["invalid"] == "true", heard
    assert "The 6 digits from the mail" in heard["description"], heard  # the hint stays
    browser.console_errors()

    code = box.smtp.wait_for(email).code  # the next try is no longer marked invalid
    browser.driver.execute_cdp_cmd("Network.enable", {})
    browser.driver.execute_cdp_cmd(
        "Network.setBlockedURLs", {"urls": ["*/portal/api/signin/verify*"]}
    )
    try:
        browser.field("Sign-in code").clear()
        browser.field("Sign-in code").send_keys(code, Keys.ENTER)
        browser.wait_for(lambda: "cannot be reached" in alert_text(browser), "the network error")
    finally:
        browser.driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
    heard = focused_ax(browser)
    assert heard["name"] == "Sign-in code", heard
    assert "cannot be reached" in heard["description"] and heard["invalid"] == "false", heard
    browser.console_errors()


def test_a_refused_limit_puts_the_keyboard_on_that_limit(cdp: Browser, box: PortalBox) -> None:
    """The box names the limit it refused: the keyboard goes there (not to the key's name), the
    field is marked invalid and reads why."""
    from selenium.webdriver.common.keys import Keys

    browser = cdp
    email, _ = box.new_user("1")
    sign_in(browser, box, email)
    browser.driver.get(box.url + "/keys")
    wait_page(browser, "API keys")
    browser.field("Expires").send_keys("soon", Keys.ENTER)
    said = alert_text(browser)
    heard = focused_ax(browser)
    assert heard["name"] == "Expires", heard
    assert said in heard["description"] and heard["invalid"] == "true", heard
    assert "empty: never" in heard["description"], heard
    browser.console_errors()  # the refused limit is a 400 in the log, by design


def test_a_button_that_waits_on_the_box_gives_the_keyboard_back(
    fresh_browser: Browser, box: PortalBox
) -> None:
    """'Send a new code' is disabled while the mail goes, which drops the keyboard focus to the
    page's start: once the mail is sent it is back on the button, not on the skip link."""
    from selenium.webdriver.common.keys import Keys

    browser = fresh_browser
    browser.driver.get(box.url + "/signin")
    wait_page(browser, "Sign in")
    press(browser, "resend-keyboard@portal.test", Keys.ENTER)
    browser.wait_for(lambda: browser.field("Sign-in code"), "the code step")
    press(browser, Keys.TAB, Keys.TAB)  # past Sign in, to Send a new code
    assert browser.driver.switch_to.active_element.text == "Send a new code"
    press(browser, Keys.ENTER)
    browser.wait_for(lambda: "new code" in browser.css("main [role=status]").text, "the word")
    assert browser.driver.switch_to.active_element.text == "Send a new code"


def test_a_revoke_the_box_refuses_leaves_the_keyboard_on_its_button(
    cdp: Browser, box: PortalBox
) -> None:
    """'Yes, revoke it' that fails (the box cannot be reached), on a slow network: the failure
    is said and the keyboard is on the button again, not at the page's start. (A key revoked
    meanwhile elsewhere is no such failure: test_stale_pages.py.)"""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    browser = cdp
    driver = browser.driver
    email, _ = box.new_user("1")
    sign_in(browser, box, email)
    driver.get(box.url + "/keys")
    wait_page(browser, "API keys")
    revoke = browser.wait_for(lambda: browser.css("button[aria-label^='Revoke key']"), "revoke")
    revoke.click()
    browser.wait_for(lambda: browser.button("Yes, revoke it"), "the confirmation")
    slow = {"offline": False, "latency": 600, "downloadThroughput": -1, "uploadThroughput": -1}
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*/portal/api/keys/*"]})
    driver.execute_cdp_cmd("Network.emulateNetworkConditions", slow)
    assert driver.switch_to.active_element.text == "Keep it"  # where the confirmation starts
    ActionChains(driver).key_down(Keys.SHIFT).send_keys(Keys.TAB).key_up(Keys.SHIFT).perform()
    assert driver.switch_to.active_element.text == "Yes, revoke it"
    press(browser, Keys.ENTER)
    assert "cannot be reached" in alert_text(browser)
    assert driver.switch_to.active_element.text == "Yes, revoke it"
    browser.console_errors()  # the blocked revoke is in the log, by design


def test_the_sign_in_page_reads_no_null(fresh_browser: Browser, box: PortalBox) -> None:
    """With no notice to give, the sign-in page showed (and a screen reader read) the word
    'null' under its heading, and 'undefined' after 'Use another address'."""
    from selenium.webdriver.common.keys import Keys

    browser = fresh_browser
    browser.driver.get(box.url + "/signin")
    wait_page(browser, "Sign in")
    lines = browser.main_text().splitlines()
    assert "null" not in lines and lines[1].startswith("We email you"), lines
    browser.field("Email address").send_keys("no-null@portal.test", Keys.ENTER)
    browser.wait_for(lambda: browser.field("Sign-in code"), "the code step")
    browser.button("Use another address").click()
    wait_page(browser, "Sign in")
    lines = browser.main_text().splitlines()
    assert "undefined" not in lines and lines[1].startswith("We email you"), lines


def test_the_daily_spend_chart_has_its_figures_as_a_table(cdp: Browser, box: PortalBox) -> None:
    """A bar's figure was only a mouse's tooltip: the days and their spend are a table too,
    opened from the keyboard, the same figures as the bars."""
    from selenium.webdriver.common.keys import Keys

    browser = cdp
    email, key = box.new_user("5")
    box.fake.push(Reply(content="spent", prompt_tokens=400_000, completion_tokens=20_000))
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    with box.http(key) as http:
        assert http.post("/v1/chat/completions", json=body).status_code == 200
    sign_in(browser, box, email)
    browser.driver.get(box.url + "/usage")
    wait_page(browser, "Usage")
    bars = browser.driver.execute_script(
        "return [...document.querySelectorAll('.chart rect title')].map((t) => t.textContent)"
    )
    summary = browser.wait_for(lambda: browser.css("main summary"), "a way to the table")
    browser.driver.execute_script("arguments[0].focus()", summary)
    press(browser, Keys.ENTER)
    table = browser.wait_for(
        lambda: [t for t in browser.all("main table") if "Day" in t.text and t.is_displayed()],
        "the table, open",
    )[0]
    rows = [r.text.replace("\n", " ") for r in table.find_elements("css selector", "tbody tr")]
    assert [r.replace(" $", ": $", 1) for r in rows] == bars, (rows, bars)
    assert any("$0.00" not in r for r in rows), rows  # today's spend is in it
    assert table.find_elements("css selector", "caption")


def test_why_the_sign_in_page_came_is_read_with_the_address_field(
    cdp: Browser, box: PortalBox
) -> None:
    """Signed out in another tab, this tab's reload draws the sign-in page saying the session
    ended and puts the keyboard in the address field at once: the field reads why too, since
    the focus move may cut the alert off."""
    browser = cdp
    sign_in(browser, box, "ended-heard@portal.test")
    first = keys_here_signed_out_in_a_new_tab(browser, box)
    browser.driver.switch_to.window(first)
    browser.driver.refresh()
    said = browser.wait_for(lambda: browser.css("main [role=alert]").text, "why")
    heard = focused_ax(browser)
    assert heard["name"] == "Email address", heard
    assert said in heard["description"] and heard["invalid"] == "false", heard


# What a page served over plain http on a network address has: no clipboard API (it is no
# secure context). Set in the browser before the page's own script runs; taken off after.
NO_CLIPBOARD = "Object.defineProperty(Navigator.prototype, 'clipboard', {get: () => undefined});"
# What each copy took: a field's selection (not the document's), else the document's.
COPIES = """
window.copied = [];
document.addEventListener("copy", () => {
  const el = document.activeElement;
  copied.push(el.value !== undefined && el.selectionEnd > el.selectionStart
    ? el.value.slice(el.selectionStart, el.selectionEnd) : String(getSelection()));
});
"""
COPIED = "return [copied, document.activeElement.textContent];"


def test_copy_works_from_the_keyboard_without_the_clipboard_api(
    cdp: Browser, box: PortalBox
) -> None:
    """A box on a LAN over http: navigator.clipboard is missing, and Copy key / Copy snippet
    said 'copy it by hand' (a snippet cannot be selected alone from the keyboard). They now
    copy the old way (the selection) and say so, the keyboard back on the button."""
    from selenium.webdriver.common.keys import Keys

    browser = cdp
    driver = browser.driver
    email, _ = box.new_user("1")
    sign_in(browser, box, email)
    added = driver.execute_cdp_cmd(
        "Page.addScriptToEvaluateOnNewDocument", {"source": NO_CLIPBOARD}
    )
    try:
        driver.get(box.url + "/connect")
        wait_page(browser, "How to connect")
        driver.execute_script(COPIES)
        copy = browser.button("Copy Claude Code snippet")
        driver.execute_script("arguments[0].focus()", copy)
        press(browser, Keys.ENTER)
        row = copy.find_element("xpath", "..")
        note = browser.wait_for(lambda: row.text.replace(copy.text, "").strip(), "the note")
        copied, focused = driver.execute_script(COPIED)
        assert "Copied" in note and focused == "Copy Claude Code snippet", (note, focused)
        assert len(copied) == 1 and copied[0].startswith("export ANTHROPIC_BASE_URL="), copied

        driver.get(box.url + "/keys")
        wait_page(browser, "API keys")
        driver.execute_script(COPIES)
        browser.field("Name of the new key").send_keys("lan", Keys.ENTER)
        key = browser.wait_for(lambda: browser.field("Your new key").get_attribute("value"), "key")
        press(browser, Keys.TAB)
        assert driver.switch_to.active_element.text == "Copy key"
        press(browser, Keys.ENTER)
        browser.wait_for(lambda: "Cop" in browser.css(".newkey [role=status]").text, "the note")
        copied, focused = driver.execute_script(COPIED)
        assert browser.css(".newkey [role=status]").text == "Copied"
        assert copied == [key] and focused == "Copy key", (copied, focused)
    finally:
        driver.execute_cdp_cmd(
            "Page.removeScriptToEvaluateOnNewDocument", {"identifier": added["identifier"]}
        )


# The focused element's words: its text, aria-label and the labels of a field.
FOCUS_WORDS = """
const el = document.activeElement;
return [el.textContent, el.getAttribute("aria-label") || "",
  ...Array.from(el.labels || []).map((l) => l.textContent)].map((t) => t.trim());
"""


def tab_to(browser: Browser, words: str, back: bool = False) -> None:
    """Tab (Shift+Tab with `back`) until the focus is on what `words` name; at most 40 stops."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    for _ in range(40):
        if words in browser.driver.execute_script(FOCUS_WORDS):
            return
        chain = ActionChains(browser.driver)
        if back:
            chain.key_down(Keys.SHIFT).send_keys(Keys.TAB).key_up(Keys.SHIFT).perform()
        else:
            chain.send_keys(Keys.TAB).perform()
    raise AssertionError(f"Tab never reached {words!r}")


def test_a_whole_visit_by_keyboard_alone(cdp: Browser, box: PortalBox) -> None:
    """Sign in with the code, make a key and copy it, change a key's limits, revoke a key, start
    a top-up and sign out: Tab, Shift+Tab, Enter and typing only (the page is typed into where
    it puts the keyboard)."""
    from selenium.webdriver.common.keys import Keys

    browser, driver = cdp, cdp.driver
    email, _ = box.new_user("1")
    driver.get(box.url + "/signin")
    wait_page(browser, "Sign in")
    press(browser, email, Keys.ENTER)
    browser.wait_for(lambda: browser.field("Sign-in code"), "the code step")
    press(browser, box.smtp.wait_for(email).code, Keys.ENTER)
    wait_page(browser, "Your account")
    tab_to(browser, "Keys")
    press(browser, Keys.ENTER)
    wait_page(browser, "API keys")
    tab_to(browser, "Name of the new key")
    press(browser, "kbd", Keys.ENTER)
    browser.wait_for(lambda: "Your new key" in driver.execute_script(FOCUS_WORDS), "the new key")
    press(browser, Keys.TAB, Keys.ENTER)
    browser.wait_for(lambda: "Copied" in browser.css(".newkey").text, "the copy")
    tab_to(browser, "Limits of key (no name)", back=True)
    press(browser, Keys.ENTER)
    browser.wait_for(lambda: "Spending limit" in " ".join(driver.execute_script(FOCUS_WORDS)), "")
    press(browser, "3", Keys.ENTER)
    browser.wait_for(lambda: "$3.00" in browser.main_text(), "the new limit")
    tab_to(browser, "Revoke key kbd")
    press(browser, Keys.ENTER)
    browser.wait_for(lambda: browser.button("Yes, revoke it"), "the confirmation")
    tab_to(browser, "Yes, revoke it", back=True)
    press(browser, Keys.ENTER)
    browser.wait_for(lambda: "is revoked" in driver.execute_script(FOCUS_WORDS)[0], "the word")
    tab_to(browser, "Billing", back=True)
    press(browser, Keys.ENTER)
    wait_page(browser, "Billing")
    tab_to(browser, "Amount in USD")
    press(browser, "25", Keys.ENTER)
    browser.wait_for(lambda: "checkout.stripe.com" in driver.current_url, "the way to Stripe")
    browser.console_errors()  # the checkout host resolves to nothing here, by design
    driver.back()
    wait_page(browser, "Billing")
    tab_to(browser, "Sign out")
    press(browser, Keys.ENTER)
    browser.wait_for(lambda: "Email address" in driver.execute_script(FOCUS_WORDS), "signed out")
    assert driver.current_url == box.url + "/signin"


def test_a_saved_change_to_a_key_is_said(cdp: Browser, box: PortalBox) -> None:
    """Saving a key's limits or name put the keyboard back on the button that opened the form,
    and nothing said it was saved: a screen reader heard the button again. The page's status
    line now says so (as it says a revoke)."""
    from selenium.webdriver.common.keys import Keys

    browser, driver = cdp, cdp.driver
    email, _ = box.new_user("1")
    sign_in(browser, box, email)
    driver.get(box.url + "/keys")
    wait_page(browser, "API keys")
    status = "main > [role=status]"
    browser.css("button[aria-label='Limits of key (no name)']").send_keys(Keys.ENTER)
    browser.wait_for(lambda: browser.button("Save limits"), "the limits form")
    press(browser, "4", Keys.ENTER)
    browser.wait_for(lambda: "$4.00" in browser.main_text(), "the new limit")
    assert browser.css(status).text == "The limits of key (no name) are saved.", status
    assert driver.switch_to.active_element.text == "Limits"
    browser.css("button[aria-label='Rename key (no name)']").send_keys(Keys.ENTER)
    browser.wait_for(lambda: browser.button("Save name"), "the rename form")
    press(browser, "tool", Keys.ENTER)
    browser.wait_for(lambda: browser.all("article[aria-label='Key tool']"), "the new name")
    assert browser.css(status).text == "Key (no name) is now named tool."
