"""The portal in a real browser: sign in with the mailed code, keys made, used and revoked,
a top-up through the Stripe double and back, every page drawn and free of console errors."""

from __future__ import annotations

import openai
import pytest

from tests.fakes.openai_upstream import Reply
from tests.portal.browser import Browser, luminance_spread
from tests.portal.conftest import MODEL, PortalBox, sign_in, wait_page
from tests.support import sdk_http

PAGES = {
    "/": "Your account",
    "/keys": "API keys",
    "/usage": "Usage",
    "/billing": "Billing",
    "/connect": "How to connect",
}


def make_key(browser: Browser, box: PortalBox, name: str) -> str:
    """On the keys page, make a key named `name`; the full key the page shows (once)."""
    browser.driver.get(box.url + "/keys")
    wait_page(browser, "API keys")
    browser.field("Name of the new key").send_keys(name)
    browser.button("Create key").click()
    shown = browser.wait_for(lambda: browser.field("Your new key"), "the new key")
    return str(shown.get_attribute("value"))


def assert_drawn(browser: Browser, what: str) -> None:
    """The screenshot is not blank: many grey levels with real spread."""
    variance, levels = luminance_spread(browser.screenshot_png(scale=0.5))
    assert variance > 50 and levels > 8, f"{what} looks blank ({variance:.1f}, {levels})"


def test_sign_in_with_the_mailed_code_shows_the_account(
    fresh_browser: Browser, box: PortalBox
) -> None:
    sign_in(fresh_browser, box, "first@portal.test")
    text = fresh_browser.main_text()
    assert "first@portal.test" in text and "$0.00" in text
    assert fresh_browser.console_errors() == []
    # the portal's sign-in minted no API key, unlike /api/v1/auth/otp/verify
    assert box.query(
        'SELECT COUNT(*) FROM api_key k JOIN "user" u ON u.id = k.user_id WHERE u.email = ?',
        "first@portal.test",
    ) == [(0,)]
    cookie = fresh_browser.driver.get_cookie("codelace_session")
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    stored = fresh_browser.driver.execute_script(
        "return JSON.stringify("
        "[Object.keys(localStorage), Object.keys(sessionStorage), document.cookie])"
    )
    assert stored == '[[],[],""]'


@pytest.mark.parametrize("width", [360, 1280])
def test_every_page_is_drawn_without_console_errors(
    fresh_browser: Browser, box: PortalBox, width: int
) -> None:
    sign_in(fresh_browser, box, f"pages{width}@portal.test")
    fresh_browser.driver.set_window_size(width, 900)
    for path, title in PAGES.items():
        fresh_browser.driver.get(box.url + path)
        wait_page(fresh_browser, title)
        assert_drawn(fresh_browser, path)
        overflow = fresh_browser.driver.execute_script(
            "return document.documentElement.scrollWidth - window.innerWidth"
        )
        assert overflow <= 0, f"{path} scrolls sideways at {width} px"
        assert fresh_browser.console_errors() == [], path
    fresh_browser.driver.set_window_size(1280, 900)


def test_a_key_is_made_shown_once_used_and_revoked(fresh_browser: Browser, box: PortalBox) -> None:
    email = "keys@portal.test"
    sign_in(fresh_browser, box, email)
    box.cli("credit", email, "5", "--reason", "portal test")
    full_key = make_key(fresh_browser, box, "laptop")
    assert full_key.startswith("cl_") and len(full_key) == 43
    fresh_browser.button("Copy key").click()
    fresh_browser.wait_for(lambda: "Copied" in fresh_browser.main_text(), "the copy note")
    item = fresh_browser.wait_for(lambda: fresh_browser.css("article.key"), "the key in the list")
    assert "laptop" in item.text and full_key[:7] in item.text and full_key not in item.text
    assert "never" in item.text  # last use

    box.fake.push(Reply(content="hello from the fake"))
    client = openai.OpenAI(
        base_url=box.url + "/v1", api_key=full_key, max_retries=0, http_client=sdk_http(openai)
    )
    answer = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}]
    )
    assert answer.choices[0].message.content == "hello from the fake"

    fresh_browser.driver.get(box.url + "/usage")
    wait_page(fresh_browser, "Usage")
    assert MODEL in fresh_browser.main_text()
    bars = fresh_browser.all("svg.chart rect.bar")
    assert len(bars) == 30 and float(bars[-1].get_attribute("height")) > 0

    fresh_browser.driver.get(box.url + "/keys")
    wait_page(fresh_browser, "API keys")
    fresh_browser.wait_for(lambda: fresh_browser.css("article.key"), "the key list")
    fresh_browser.click(
        lambda: fresh_browser.css("button[aria-label='Rename key laptop']"), "rename"
    )
    renamed = fresh_browser.field("New name for laptop")
    renamed.clear()
    renamed.send_keys("desktop")
    fresh_browser.button("Save name").click()
    fresh_browser.wait_for(lambda: "desktop" in fresh_browser.css("article.key h3").text, "rename")
    fresh_browser.click(
        lambda: fresh_browser.css("button[aria-label='Revoke key desktop']"), "revoke"
    )
    fresh_browser.button("Yes, revoke it").click()
    fresh_browser.wait_for(lambda: "No keys yet" in fresh_browser.main_text(), "the revoke")
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert fresh_browser.console_errors() == []


def test_after_sign_out_the_back_button_shows_nothing_of_the_account(
    fresh_browser: Browser, box: PortalBox
) -> None:
    """Someone at the same computer after its owner signed out: Back must not bring the keys
    page back from the browser's back/forward cache with the new key still in it (or the
    account's data): the page is asked for anew and finds no session."""
    browser = fresh_browser
    sign_in(browser, box, "shared-computer@portal.test")
    full_key = make_key(browser, box, "laptop")
    browser.button("Sign out").click()
    wait_page(browser, "Sign in")
    browser.driver.back()
    wait_page(browser, "Sign in")  # the signed-out page again, not the keys page
    assert browser.driver.current_url == box.url + "/signin?next=%2Fkeys"  # back after signing in
    shown = browser.driver.execute_script(
        "return document.body.innerText + [...document.querySelectorAll('input')]"
        ".map((i) => i.value).join(' ')"
    )
    assert full_key not in shown and "laptop" not in shown


def test_a_top_up_goes_to_stripe_and_the_return_page_leads_back(
    fresh_browser: Browser, box: PortalBox
) -> None:
    email = "topup@portal.test"
    sign_in(fresh_browser, box, email)
    fresh_browser.driver.get(box.url + "/billing")
    wait_page(fresh_browser, "Billing")
    assert "At least $10.00" in fresh_browser.main_text()
    fresh_browser.field("Amount in USD").send_keys("25")
    fresh_browser.button("Pay with Stripe").click()
    fresh_browser.wait_for(
        lambda: fresh_browser.driver.current_url.startswith("https://checkout.stripe.com/"),
        "the way to Stripe Checkout",
    )
    session = box.double.session_by_url(fresh_browser.driver.current_url)
    assert session["amount_total"] == 2500 and session["customer_email"] == email
    fresh_browser.console_errors()  # the checkout host resolves to nothing here, by design
    # The customer pays; Stripe tells the box, then sends the customer back.
    event = box.double.complete(session["id"])
    body, headers = box.double.webhook(event)
    with box.http() as http:
        assert http.post("/api/v1/stripe/webhook", content=body, headers=headers).is_success
    fresh_browser.driver.get(session["success_url"].replace("{CHECKOUT_SESSION_ID}", session["id"]))
    assert "$25.00 is on your balance" in fresh_browser.css("main").text
    fresh_browser.css("a[href='/billing']").click()
    wait_page(fresh_browser, "Billing")
    text = fresh_browser.main_text()
    assert "Balance: $25.00" in text and "completed" in text
    assert fresh_browser.console_errors() == []


def test_the_trial_card_setup_is_offered_until_claimed(
    fresh_browser: Browser, box: PortalBox
) -> None:
    email = "trial@portal.test"
    sign_in(fresh_browser, box, email)
    fresh_browser.driver.get(box.url + "/billing")
    wait_page(fresh_browser, "Billing")
    assert "get $1.00 of credit" in fresh_browser.main_text()
    fresh_browser.button("Save a card").click()
    fresh_browser.wait_for(
        lambda: fresh_browser.driver.current_url.startswith("https://checkout.stripe.com/"),
        "the way to Stripe Checkout",
    )
    session = box.double.session_by_url(fresh_browser.driver.current_url)
    assert session["mode"] == "setup" and session["customer_email"] == email
    fresh_browser.console_errors()  # the checkout host resolves to nothing here, by design
    body, headers = box.double.webhook(box.double.complete(session["id"]))
    with box.http() as http:
        assert http.post("/api/v1/stripe/webhook", content=body, headers=headers).is_success
    fresh_browser.driver.get(session["success_url"].replace("{CHECKOUT_SESSION_ID}", session["id"]))
    assert "Card saved" in fresh_browser.css("h1").text
    fresh_browser.css("a[href='/billing']").click()
    wait_page(fresh_browser, "Billing")
    text = fresh_browser.main_text()
    assert "Balance: $1.00" in text and "Trial credit" in text
    assert "Save a card" not in text  # claimed: no longer offered
    assert fresh_browser.console_errors() == []


def test_the_connect_page_names_the_models_to_use_at_their_prices(
    fresh_browser: Browser, box: PortalBox
) -> None:
    """Its snippets say MODEL, "a model id of the box": a user who had only the portal could not
    learn one. The page lists the models the box serves, with their prices as charged: below a
    cent's precision (0.075 USD per 1M input tokens, as many small models cost) they were shown
    rounded to cents, $0.08."""
    cheap = "fake/cheap-test"
    box.cli("models", "set", cheap, "--upstream-model", "gpt-test", "--provider", "fake",
            "--input-per-1m", "0.075", "--output-per-1m", "0.3")  # fmt: skip
    box.until_served(cheap)
    sign_in(fresh_browser, box, "prices@portal.test")
    fresh_browser.driver.get(box.url + "/connect")
    wait_page(fresh_browser, "How to connect")
    rows = fresh_browser.wait_for(lambda: fresh_browser.all("table tbody tr"), "the models table")
    cells = [[td.text for td in row.find_elements("css selector", "td, th")] for row in rows]
    assert [cheap, "$0.075", "$0.30"] in cells, cells
    assert [MODEL, "$2.50", "$10.00"] in cells, cells
    assert fresh_browser.console_errors() == []


def test_the_home_page_gives_the_openai_sdk_a_base_url_that_works(
    fresh_browser: Browser, box: PortalBox
) -> None:
    """The home page said "Point the OpenAI SDK, Claude Code or Codex at http://host": the
    OpenAI SDK and Codex need its /v1 (only Claude Code takes the address without it), so an
    SDK pointed where the home page said got a 404 on every call."""
    email = "homeurl@portal.test"
    box.cli("users", "create", email)
    box.cli("credit", email, "1", "--reason", "portal home url")
    key = box.cli("keys", "create", email).strip().splitlines()[0]
    sign_in(fresh_browser, box, email)
    line = fresh_browser.wait_for(
        lambda: [p for p in fresh_browser.all("main p") if "OpenAI SDK" in p.text], "the line"
    )[0]
    urls = [code.text for code in line.find_elements("css selector", "code")]
    client = openai.OpenAI(
        base_url=urls[0], api_key=key, max_retries=0, http_client=sdk_http(openai)
    )
    answer = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}]
    )
    assert answer.choices[0].message.content
    assert urls == [box.url + "/v1", box.url]  # Claude Code's: without /v1


def test_the_billing_page_shows_a_top_up_confirmed_while_it_is_open(
    fresh_browser: Browser, box: PortalBox
) -> None:
    """Back from Stripe before Stripe's word reached the box, the success page says the balance
    is credited "as soon as Stripe confirms the payment" and leads to the billing page: it
    showed the old balance and "pending (waiting for Stripe)" until the person thought to
    reload, however long ago Stripe confirmed. It now follows a pending top-up until it settles."""
    browser, email = fresh_browser, "confirmed-later@portal.test"
    sign_in(browser, box, email)
    browser.driver.get(box.url + "/billing")
    wait_page(browser, "Billing")
    browser.field("Amount in USD").send_keys("25")
    browser.button("Pay with Stripe").click()
    browser.wait_for(
        lambda: browser.driver.current_url.startswith("https://checkout.stripe.com/"), "Stripe"
    )
    session = box.double.session_by_url(browser.driver.current_url)
    browser.console_errors()  # the checkout host resolves to nothing here, by design
    event = box.double.complete(session["id"])  # paid; Stripe's event not delivered yet
    browser.driver.get(session["success_url"].replace("{CHECKOUT_SESSION_ID}", session["id"]))
    assert "as soon as Stripe confirms" in browser.css("main").text
    browser.css("a[href='/billing']").click()
    wait_page(browser, "Billing")
    assert "Balance: $0.00" in browser.main_text()
    assert "pending (waiting for Stripe)" in browser.main_text()
    browser.driver.execute_script("window.sameDrawing = true;")
    browser.css("[aria-label='Payments table']").click()  # the keyboard reading the table
    body, headers = box.double.webhook(event)
    with box.http() as http:
        assert http.post("/api/v1/stripe/webhook", content=body, headers=headers).is_success
    browser.wait_for(lambda: "Balance: $25.00" in browser.main_text(), "the new balance", 15)
    assert "pending" not in browser.main_text(), browser.main_text()
    assert browser.driver.execute_script("return window.sameDrawing === true"), "reloaded"
    focused = browser.driver.execute_script("return document.activeElement.ariaLabel")
    assert focused == "Payments table", focused  # still there, on the table drawn anew
    assert browser.console_errors() == []
