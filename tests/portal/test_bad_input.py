"""Bad input on every portal form shows a message in the page (never a stack trace, a blank
page or a browser bubble): empty, too long, not an email, a wrong or expired code, a key name
too long, an amount empty, not a number, under the minimum or absurd."""

from __future__ import annotations

import sqlite3

import pytest

from tests.portal.browser import Browser
from tests.portal.conftest import PortalBox, sign_in

NETWORK_REFUSAL = "the server responded with a status of 4"


def alert_after(browser: Browser, button: str) -> str:
    """Click `button`; the text of the alert the page then shows."""
    browser.driver.execute_script(
        "for (const a of document.querySelectorAll('[role=alert]')) a.textContent = ''"
    )
    browser.button(button).click()
    text = browser.wait_for(
        lambda: " ".join(a.text for a in browser.all("main [role=alert]")).strip(),
        f"a message after {button!r}",
    )
    assert "Traceback" not in text and "internal error" not in text
    return str(text)


def only_refusals_logged(browser: Browser) -> None:
    """The refused calls are 4xx lines in the log; no script error besides them."""
    errors = browser.console_errors()
    assert all(NETWORK_REFUSAL in e for e in errors), errors


def retype(element: object, text: str) -> None:
    element.clear()  # type: ignore[attr-defined]
    if text:
        element.send_keys(text)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        ("", "email"),
        ("not-an-email", "email"),
        ("a" * 300 + "@portal.test", "email"),
        ("two@@portal.test", "email"),
    ],
)
def test_the_email_step(fresh_browser: Browser, box: PortalBox, typed: str, said: str) -> None:
    fresh_browser.driver.get(box.url + "/signin")
    field = fresh_browser.wait_for(lambda: fresh_browser.field("Email address"), "the form")
    retype(field, typed)
    assert said in alert_after(fresh_browser, "Email me a code").lower()
    assert fresh_browser.css("h1").text == "Sign in"
    only_refusals_logged(fresh_browser)


def test_the_code_step(fresh_browser: Browser, box: PortalBox) -> None:
    email = "badcode@portal.test"
    fresh_browser.driver.get(box.url + "/signin")
    fresh_browser.wait_for(lambda: fresh_browser.field("Email address"), "form").send_keys(email)
    fresh_browser.button("Email me a code").click()
    field = fresh_browser.wait_for(lambda: fresh_browser.field("Sign-in code"), "the code step")
    real = box.smtp.wait_for(email).code
    wrong = f"{(int(real) + 1) % 1_000_000:06d}"
    for typed, said in [("", "6 digits"), ("12ab", "6 digits"), ("1" * 40, "6 digits"),
                        (wrong, "wrong code")]:  # fmt: skip
        retype(field, typed)
        assert said in alert_after(fresh_browser, "Sign in"), typed
    with sqlite3.connect(box.db_path, timeout=10) as db:
        db.execute(
            "UPDATE otp_code SET expires_at = '2020-01-01 00:00:00' WHERE email = ?", (email,)
        )
    retype(field, real)
    assert "expired" in alert_after(fresh_browser, "Sign in")
    assert fresh_browser.driver.get_cookie("codelace_session") is None
    before = len(box.smtp.messages_to(email))
    fresh_browser.button("Send a new code").click()
    fresh_code = box.smtp.wait_for(email, count=before + 1).code
    fresh_browser.wait_for(lambda: "new code is on its way" in fresh_browser.main_text(), "note")
    retype(field, fresh_code)
    fresh_browser.button("Sign in").click()
    fresh_browser.wait_for(lambda: "Your account" in fresh_browser.main_text(), "the home page")
    only_refusals_logged(fresh_browser)


def test_the_key_forms(fresh_browser: Browser, box: PortalBox) -> None:
    sign_in(fresh_browser, box, "badkeys@portal.test")
    fresh_browser.driver.get(box.url + "/keys")
    name = fresh_browser.wait_for(lambda: fresh_browser.field("Name of the new key"), "the form")
    retype(name, "k" * 101)
    assert "at most 100 characters" in alert_after(fresh_browser, "Create key")
    retype(name, "ok")
    fresh_browser.button("Create key").click()
    fresh_browser.wait_for(lambda: fresh_browser.all("article.key"), "the new key")
    fresh_browser.click(lambda: fresh_browser.css("button[aria-label='Rename key ok']"), "rename")
    renamed = fresh_browser.field("New name for ok")
    retype(renamed, "r" * 101)
    assert "at most 100 characters" in alert_after(fresh_browser, "Save name")
    only_refusals_logged(fresh_browser)


AMOUNTS = [
    ("", "enter an amount"),
    ("ten dollars", "must be a number"),
    ("5", "smallest top-up is 10"),
    ("-20", "smallest top-up is 10"),
    ("99999999", "largest top-up is 10000"),
    ("1e400", "largest top-up"),
    ("12.345", "two decimals"),
    ("9" * 80, "largest top-up is 10000"),  # a number, too large: was "must be a number"
    ("1_0", "must be a number"),  # Decimal's digit separator: was a 10 USD top-up
    ("\u0661\u0660", "must be a number"),  # Arabic-Indic digits: were 10 USD too
]


def test_the_top_up_amount(fresh_browser: Browser, box: PortalBox) -> None:
    sign_in(fresh_browser, box, "badamount@portal.test")
    fresh_browser.driver.get(box.url + "/billing")
    field = fresh_browser.wait_for(lambda: fresh_browser.field("Amount in USD"), "the form")
    sessions = len(box.double.sessions)
    for typed, said in AMOUNTS:
        retype(field, typed)
        assert said in alert_after(fresh_browser, "Pay with Stripe"), typed
    assert fresh_browser.driver.current_url == box.url + "/billing"
    assert len(box.double.sessions) == sessions  # nothing was started at Stripe
    only_refusals_logged(fresh_browser)


def test_an_amount_written_as_the_page_writes_amounts_is_taken(
    fresh_browser: Browser, box: PortalBox
) -> None:
    """The page writes amounts with thousands commas ("At most $10,000.00"), and a person
    typed one so ("$1,250.50"): "must be a number of US dollars". Commas between groups of
    three digits are now read as the page writes them; a decimal comma ("10,50", "1,5") is
    still refused (it is no grouping, and the page's amounts have a decimal point)."""
    sign_in(fresh_browser, box, "grouped@portal.test")
    fresh_browser.driver.get(box.url + "/billing")
    field = fresh_browser.wait_for(lambda: fresh_browser.field("Amount in USD"), "the form")
    assert "at most $10,000.00" in fresh_browser.main_text()
    for typed in ("10,50", "1,5", "1,25,0", "1,2500"):
        retype(field, typed)
        assert "must be a number" in alert_after(fresh_browser, "Pay with Stripe"), typed
    retype(field, "$1,250.50")
    fresh_browser.button("Pay with Stripe").click()
    fresh_browser.wait_for(
        lambda: fresh_browser.driver.current_url.startswith("https://checkout.stripe.com/"),
        "the way to Stripe Checkout",
    )
    session = box.double.session_by_url(fresh_browser.driver.current_url)
    assert session["amount_total"] == 125050
    fresh_browser.console_errors()  # the checkout host resolves to nothing here, by design
