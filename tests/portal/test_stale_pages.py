"""The portal when what a page shows has changed under it (a key revoked in another tab, the
list drawn anew under an open form, a sign-in in another tab under the code step) and Back
from the code step, in a real browser on a real box."""

from __future__ import annotations

from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement

from tests.portal.browser import Browser
from tests.portal.conftest import PortalBox, sign_in, wait_page


def _keys_page_with(browser: Browser, box: PortalBox, email: str, *names: str) -> None:
    """A signed-in keys page of `email` listing keys named `names` (made with the CLI)."""
    box.cli("users", "create", email)
    for name in names:
        box.cli("keys", "create", email, "--name", name)
    sign_in(browser, box, email)
    browser.driver.get(box.url + "/keys")
    wait_page(browser, "API keys")


def _revoke_elsewhere(browser: Browser, box: PortalBox, name: str) -> None:
    """Revoke the listed key `name` behind the page's back (as another tab would)."""
    key_id = browser.css(f"article.key[aria-label='Key {name}']").get_attribute("data-key")
    box.cli("keys", "revoke", key_id)


def _listed(browser: Browser) -> list[str]:
    return [a.get_attribute("aria-label") for a in browser.all("article.key")]


def _to_the_code_step(browser: Browser, box: PortalBox, email: str) -> tuple[WebElement, str]:
    """The sign-in page's code step for `email`: its code field and the code mailed."""
    before = len(box.smtp.messages_to(email))
    browser.driver.get(box.url + "/signin")
    browser.wait_for(lambda: browser.field("Email address"), "the sign-in form").send_keys(email)
    browser.button("Email me a code").click()
    field = browser.wait_for(lambda: browser.field("Sign-in code"), "the code step")
    return field, box.smtp.wait_for(email, count=before + 1).code


def test_a_key_revoked_in_another_tab_is_said_to_be_gone_and_leaves_the_list(
    cdp: Browser, box: PortalBox
) -> None:
    """Revoking, or saving the limits of, a key revoked since the list was drawn showed the
    box's bare 404 ('no active API key with id ...') under the stale row, which stayed. The
    page now says the key no longer exists and draws the list anew without it."""
    browser = cdp
    _keys_page_with(browser, box, "stale-keys@portal.test", "first", "second", "kept")
    _revoke_elsewhere(browser, box, "first")
    browser.css("button[aria-label='Revoke key first']").click()
    browser.click(lambda: browser.button("Yes, revoke it"), "the confirmation")
    browser.wait_for(lambda: "Key first" not in _listed(browser), "the list without first")
    said = browser.css("main").text
    assert "Key first no longer exists" in said, said
    assert "no active API key" not in said

    _revoke_elsewhere(browser, box, "second")
    browser.css("button[aria-label='Limits of key second']").click()
    browser.field("Spending limit in USD for second").send_keys("5")
    browser.button("Save limits").click()
    browser.wait_for(lambda: "Key second" not in _listed(browser), "the list without second")
    said = browser.css("main").text
    assert "Key second no longer exists" in said and "nothing was saved" in said, said
    assert _listed(browser) == ["Key kept"]
    logged = browser.console_errors()  # the browser logs the two refused calls, nothing else
    assert len(logged) == 2 and all("/portal/api/keys/" in e and "404" in e for e in logged), logged


def test_an_open_form_and_what_was_typed_in_it_survive_the_list_drawn_anew(
    cdp: Browser, box: PortalBox
) -> None:
    """A key's open form (its limits being typed) was wiped when another action drew the list
    anew (another key revoked, a key created): the typing was lost. It now stays open with
    what was typed, and saves it; the create form keeps its typing across a redraw too."""
    browser = cdp
    _keys_page_with(browser, box, "open-form@portal.test", "open", "other")
    browser.css("button[aria-label='Limits of key open']").click()
    browser.field("Spending limit in USD for open").send_keys("7")
    browser.field("Name of the new key").send_keys("draft")
    browser.css("button[aria-label='Revoke key other']").click()
    browser.click(lambda: browser.button("Yes, revoke it"), "the confirmation")
    browser.wait_for(lambda: "Key other is revoked" in browser.main_text(), "the revoke")
    # (the notice comes first, then the list drawn anew: its redraw is what is tested)
    browser.wait_for(lambda: "Key other" not in _listed(browser), "the list drawn anew")
    assert browser.field("Spending limit in USD for open").get_attribute("value") == "7"
    assert browser.field("Name of the new key").get_attribute("value") == "draft"
    browser.button("Create key").click()
    browser.wait_for(lambda: "Key draft" in _listed(browser), "the new key in the list")
    assert browser.field("Spending limit in USD for open").get_attribute("value") == "7"
    browser.button("Save limits").click()
    browser.wait_for(
        lambda: "The limits of key open are saved" in browser.main_text(), "the saved limits"
    )
    # (the notice comes first, then the list drawn anew with the saved limit)
    browser.wait_for(
        lambda: "$7.00" in browser.css("article.key[aria-label='Key open']").text,
        "the key's saved limit in the list",
    )
    assert browser.console_errors() == []


def test_the_code_step_after_another_tab_signed_in_shows_the_account(
    cdp: Browser, box: PortalBox
) -> None:
    """Tab A waits on the code step; tab B signs the browser in (asking a newer code, so A's
    no longer works). A's code then only drew the refusal, and no code could ever work there:
    a dead end. The page now sees the browser is signed in and shows the account, saying so."""
    browser = cdp
    driver = browser.driver
    email = "code-step-tabs@portal.test"
    code_field, first_code = _to_the_code_step(browser, box, email)
    tab_a = driver.current_window_handle
    driver.switch_to.new_window("tab")
    sign_in(browser, box, email)
    driver.switch_to.window(tab_a)
    code_field.send_keys(first_code)
    browser.button("Sign in").click()
    wait_page(browser, "Your account")
    said = browser.main_text()
    assert "signed in in another tab" in said, said
    assert driver.current_url == box.url + "/"


def test_back_from_the_code_step_returns_to_the_email_step(cdp: Browser, box: PortalBox) -> None:
    """Back on the code step left the portal (the page the browser was on before): the code
    step was drawn in place, with no history entry of its own. Back now returns to the email
    step (the address kept), Forward to the code step, whose code still signs in."""
    browser = cdp
    driver = browser.driver
    email = "back-from-code@portal.test"
    _field, code = _to_the_code_step(browser, box, email)
    driver.back()
    address = browser.wait_for(lambda: browser.field("Email address"), "the email step again")
    assert address.get_attribute("value") == email
    assert driver.current_url == box.url + "/signin"
    wait_page(browser, "Sign in")
    driver.forward()
    browser.wait_for(lambda: browser.field("Sign-in code"), "the code step again")
    browser.button("Use another address").click()  # the same way back, on the page
    browser.wait_for(lambda: browser.field("Email address"), "the email step by its button")
    driver.forward()
    browser.wait_for(lambda: browser.field("Sign-in code"), "the code step").send_keys(code)
    browser.button("Sign in").click()
    wait_page(browser, "Your account")
    assert browser.console_errors() == []


def test_another_address_after_a_reload_on_the_code_step(cdp: Browser, box: PortalBox) -> None:
    """A reload on the code step draws the email step on the code step's history entry. The
    next code step's 'Use another address' (and Back) went to that entry and drew the old code
    step again, not the email step."""
    browser = cdp
    driver = browser.driver
    email = "reload-code@portal.test"
    driver.get(box.url + "/signin")
    browser.wait_for(lambda: browser.field("Email address"), "the sign-in form").send_keys(email)
    browser.button("Email me a code").click()
    browser.wait_for(lambda: browser.field("Sign-in code"), "the code step")
    driver.refresh()
    again = browser.wait_for(lambda: browser.field("Email address"), "the email step (reload)")
    again.send_keys("other-" + email)
    browser.button("Email me a code").click()
    browser.wait_for(lambda: browser.field("Sign-in code"), "the second code step")
    browser.button("Use another address").click()
    address = browser.wait_for(lambda: browser.field("Email address"), "the email step")
    assert address.get_attribute("value") == "other-" + email
    wait_page(browser, "Sign in")


def test_the_skip_link_on_the_code_step_stays_on_the_code_step(
    cdp: Browser, box: PortalBox
) -> None:
    """The skip link ('#main') is a history step of its own, and the page took every such step
    as Back or Forward between the sign-in steps: on the code step it drew the email step. It
    stays on the code step; 'Use another address' still leads to the email step, Back from
    there to the code step, whose code still signs in."""
    browser = cdp
    driver = browser.driver
    email = "skip-link@portal.test"
    _field, code = _to_the_code_step(browser, box, email)
    driver.execute_script("arguments[0].focus()", browser.css("a.skip"))  # Tab from the top
    driver.switch_to.active_element.send_keys(Keys.ENTER)
    browser.wait_for(lambda: driver.current_url.endswith("#main"), "the skip link followed")
    browser.wait_for(lambda: browser.field("Sign-in code"), "the code step still")
    browser.button("Use another address").click()  # still the way to the email step
    address = browser.wait_for(lambda: browser.field("Email address"), "the email step")
    assert address.get_attribute("value") == email
    driver.back()  # the code step was the step before
    browser.wait_for(lambda: browser.field("Sign-in code"), "the code step again").send_keys(code)
    browser.button("Sign in").click()
    wait_page(browser, "Your account")


def test_a_new_key_revoked_in_another_tab_is_no_longer_shown_in_full(
    cdp: Browser, box: PortalBox
) -> None:
    """The new key is shown in full until it is revoked (nothing to copy: it no longer works).
    Revoked in another tab, it left the list when the list was drawn anew, but its full text
    stayed up for copying."""
    browser = cdp
    _keys_page_with(browser, box, "new-key-gone@portal.test", "other")
    browser.field("Name of the new key").send_keys("fresh")
    browser.button("Create key").click()
    browser.wait_for(lambda: "Key fresh" in _listed(browser), "the new key in the list")
    assert browser.all("input[name='full_key']")
    _revoke_elsewhere(browser, box, "fresh")
    browser.css("button[aria-label='Revoke key other']").click()
    browser.click(lambda: browser.button("Yes, revoke it"), "the confirmation")
    browser.wait_for(lambda: not _listed(browser), "the list drawn anew, empty")
    assert "Key other is revoked" in browser.main_text()
    assert not browser.all("input[name='full_key']")


def _claim_the_trial_elsewhere(box: PortalBox, email: str) -> None:
    """Save a card for `email`'s account in another session (as another tab would): the trial
    credit is given."""
    with box.http() as client:
        csrf = box.sign_in_http(client, email)["csrf_token"]
        started = client.post(
            "/portal/api/setup", headers={"origin": box.url, "x-csrf-token": csrf}
        )
        assert started.status_code == 200, started.text
        session = box.double.session_by_url(started.json()["checkout_url"])
        body, headers = box.double.webhook(box.double.complete(session["id"]))
        assert client.post("/api/v1/stripe/webhook", content=body, headers=headers).is_success


def test_a_trial_offer_left_open_after_the_trial_was_given_starts_no_card_setup(
    fresh_browser: Browser, box: PortalBox
) -> None:
    """A billing page drawn while the trial was still open, the trial then given (a card saved
    in another tab): its "Save a card" took the person to Stripe to save a card that could earn
    nothing, and the return page said credit would come. The box now refuses it, in words."""
    email = "stale-trial@portal.test"
    sign_in(fresh_browser, box, email)
    fresh_browser.driver.get(box.url + "/billing")
    wait_page(fresh_browser, "Billing")
    _claim_the_trial_elsewhere(box, email)
    setups = len(box.double.calls("POST", "/v1/checkout/sessions"))
    fresh_browser.button("Save a card").click()
    said = fresh_browser.wait_for(lambda: fresh_browser.css("main p.error").text, "the refusal")
    assert "trial credit" in said and "already" in said, said
    assert fresh_browser.driver.current_url == box.url + "/billing"
    assert len(box.double.calls("POST", "/v1/checkout/sessions")) == setups
