"""Key names a user (or an operator, with `keys create --name`) may give, shown by the portal
in a real browser on a real box: markup, right-to-left and wide scripts, emoji and combining
accents are text, shown as given; nothing in them runs or becomes an element."""

from __future__ import annotations

from tests.portal.browser import Browser
from tests.portal.conftest import PortalBox, sign_in, wait_page

NAMES = [
    "<img src=x onerror=window.__pwned=1>",
    "<script>window.__pwned=2</script>",
    '"><svg onload=window.__pwned=3>',
    "مرحبا بالعالم",
    "世界の鍵 🎉👩‍💻",
    "cafe\u0301 cre\u0300me",
]


def test_key_names_with_markup_and_any_script_are_shown_as_text(
    cdp: Browser, box: PortalBox
) -> None:
    browser = cdp
    email = "odd-names@portal.test"
    box.cli("users", "create", email)
    for name in NAMES:
        box.cli("keys", "create", email, "--name", name)
    sign_in(browser, box, email)
    browser.driver.get(box.url + "/keys")
    wait_page(browser, "API keys")
    browser.wait_for(lambda: NAMES[-1] in browser.main_text(), "the keys")
    shown = browser.main_text()
    assert all(name in shown for name in NAMES), shown
    script = "return [window.__pwned, document.querySelectorAll('main img, main svg script,"
    script += " main script, main svg[onload]').length]"
    assert browser.driver.execute_script(script) == [None, 0]
    assert browser.console_errors() == []


def test_an_address_at_an_international_domain_is_shown_in_unicode(
    cdp: Browser, box: PortalBox
) -> None:
    """An address typed at bücher.de is kept (and mailed) as xn--bcher-kva.de, and the page
    said "We sent a code to ... xn--bcher-kva.de" and "Signed in as" that form. The server
    gives the page the form a person reads (`display_email`); `email` stays the stored one."""
    browser, stored = cdp, "ida@xn--bcher-kva.de"
    driver = browser.driver
    driver.get(box.url + "/signin")
    browser.wait_for(lambda: browser.field("Email address"), "the sign-in form")
    before = len(box.smtp.messages_to(stored))
    browser.field("Email address").send_keys("Ida@Bücher.de")
    browser.button("Email me a code").click()
    code_field = browser.wait_for(lambda: browser.field("Sign-in code"), "the code step")
    assert "We sent a code to ida@bücher.de." in browser.main_text()
    code_field.send_keys(box.smtp.wait_for(stored, count=before + 1).code)
    browser.button("Sign in").click()
    browser.wait_for(lambda: "Your account" in browser.main_text(), "the home page")
    assert "Signed in as ida@bücher.de." in browser.main_text()
    overview = browser.driver.execute_async_script(
        "const done = arguments[0];fetch('/portal/api/overview').then(r => r.json()).then(done);"
    )
    assert (overview["email"], overview["display_email"]) == (stored, "ida@bücher.de")
    assert browser.console_errors() == []
