"""The portal behind a proxy that serves the box under a path and strips it (`server.public_url
= "http://127.0.0.1:PORT/gateway"`, nginx's `location /gateway/ { proxy_pass ...; }`): every
link, script, call, redirect and the cookie of the portal stay under the path. They named the
root (`/portal/assets/...`, `/keys`, `/portal/api/session`, Path=/), which the proxy does not
pass on: the page never loaded. Stripe's return links and the return page's way back too."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By

from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.prefix_proxy import PrefixStrippingProxy
from tests.fakes.smtp_server import RecordingSmtpServer
from tests.fakes.stripe_double import StripeDouble
from tests.portal.browser import Browser
from tests.portal.conftest import PortalBox, start_box, wait_page
from tests.support import TLS

PREFIX = "/gateway"


@pytest.fixture(scope="module")
def proxy() -> Iterator[PrefixStrippingProxy]:
    started = PrefixStrippingProxy(PREFIX).start()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def box(
    tmp_path_factory: pytest.TempPathFactory,
    smtp: RecordingSmtpServer,
    stripe_double: StripeDouble,
    fake: FakeOpenAI,
    proxy: PrefixStrippingProxy,
) -> Iterator[PortalBox]:
    """The box, reached through the proxy at its public URL (the module's browser uses it)."""
    folder = tmp_path_factory.mktemp("under-a-path")
    started = start_box(folder, smtp, stripe_double, fake, server={"public_url": proxy.url})
    proxy.target = started.url
    yield started
    started.server.stop()


def _click_link(browser: Browser, text: str, title: str) -> None:
    browser.click(lambda: browser.driver.find_element(By.LINK_TEXT, text), f"the {text} link")
    wait_page(browser, title)


def test_sign_in_a_key_and_its_snippet_all_under_the_path(
    fresh_browser: Browser, box: PortalBox, proxy: PrefixStrippingProxy
) -> None:
    driver, email = fresh_browser.driver, "path@portal.test"
    proxy.missed.clear()
    driver.get(proxy.url + "/keys")  # signed out: to the sign-in page, and back after it
    field = fresh_browser.wait_for(lambda: fresh_browser.field("Email address"), "sign-in")
    assert driver.current_url == proxy.url + "/signin?next=%2Fkeys"
    field.send_keys(email)
    fresh_browser.button("Email me a code").click()
    code_field = fresh_browser.wait_for(lambda: fresh_browser.field("Sign-in code"), "the code")
    code_field.send_keys(box.smtp.wait_for(email).code)
    fresh_browser.button("Sign in").click()
    wait_page(fresh_browser, "API keys")
    assert driver.current_url == proxy.url + "/keys"
    cookie = driver.get_cookie("codelace_session")
    assert cookie is not None and cookie["path"] == PREFIX and cookie["httpOnly"]
    fresh_browser.field("Name of the new key").send_keys("behind-the-proxy")
    fresh_browser.button("Create key").click()
    key = fresh_browser.wait_for(lambda: fresh_browser.field("Your new key"), "the new key")
    full_key = str(key.get_attribute("value"))
    _click_link(fresh_browser, "How to connect", "How to connect")
    assert driver.current_url == proxy.url + "/connect"
    assert f'base_url="{proxy.url}/v1"' in fresh_browser.main_text()
    _click_link(fresh_browser, "Keys page", "API keys")
    assert "behind-the-proxy" in fresh_browser.main_text()
    _click_link(fresh_browser, "codelace-box", "Your account")
    assert driver.current_url == proxy.url + "/"
    fresh_browser.css("#signout").click()
    fresh_browser.wait_for(lambda: driver.current_url == proxy.url + "/signin", "the sign-out")
    assert proxy.missed == [] and fresh_browser.console_errors() == []
    # the snippet's base URL serves the key's calls through the proxy
    bearer = {"authorization": f"Bearer {full_key}"}
    with httpx.Client(verify=TLS, timeout=30) as client:
        models = client.get(proxy.url + "/v1/models", headers=bearer)
    assert models.status_code == 200 and models.json()["data"], models.text


def _signed_in(client: httpx.Client, box: PortalBox, proxy: PrefixStrippingProxy) -> Any:
    origin = {"origin": proxy.url.removesuffix(PREFIX)}
    email = "stripe-path@portal.test"
    sent = {"email": email}
    asked = client.post(proxy.url + "/portal/api/signin/code", json=sent, headers=origin)
    assert asked.status_code == 200, asked.text
    code = box.smtp.wait_for(email).code
    verify = {"email": email, "code": code}
    verified = client.post(proxy.url + "/portal/api/signin/verify", json=verify, headers=origin)
    assert verified.status_code == 200, verified.text
    return {**origin, "x-csrf-token": verified.json()["csrf_token"]}


def test_stripe_sends_the_customer_back_under_the_path(
    box: PortalBox, proxy: PrefixStrippingProxy
) -> None:
    with httpx.Client(verify=TLS, timeout=30) as client:
        headers = _signed_in(client, box, proxy)
        started = client.post(
            proxy.url + "/portal/api/topup", json={"amount_usd": "25"}, headers=headers
        )
        assert started.status_code == 200, started.text
        session = box.double.session_by_url(started.json()["checkout_url"])
        assert session["success_url"].startswith(proxy.url + "/billing/success?")
        assert session["cancel_url"].startswith(proxy.url + "/billing/cancel?payment=")
        back = client.get(session["success_url"].replace("{CHECKOUT_SESSION_ID}", session["id"]))
    assert back.status_code == 200, back.text
    assert f'<a href="{PREFIX}/billing">' in back.text


def _sign_in_under_the_path(browser: Browser, box: PortalBox, proxy: PrefixStrippingProxy,
                            email: str) -> None:  # fmt: skip
    browser.driver.get(proxy.url + "/signin")
    browser.wait_for(lambda: browser.field("Email address"), "the sign-in form").send_keys(email)
    browser.button("Email me a code").click()
    code = browser.wait_for(lambda: browser.field("Sign-in code"), "the code step")
    code.send_keys(box.smtp.wait_for(email).code)
    browser.button("Sign in").click()
    wait_page(browser, "Your account")


def test_every_key_action_of_the_page_works_under_the_path(
    fresh_browser: Browser, box: PortalBox, proxy: PrefixStrippingProxy
) -> None:
    """Rename, limits and revoke, clicked in the page behind the proxy: each call reaches the
    box under the path and none is refused (portal calls refuse fields they do not take)."""
    browser, proxy.missed[:] = fresh_browser, []
    _sign_in_under_the_path(browser, box, proxy, "key-actions-path@portal.test")
    _click_link(browser, "Keys", "API keys")
    browser.field("Name of the new key").send_keys("first")
    browser.field("Spending limit in USD").send_keys("5")
    browser.button("Create key").click()
    browser.wait_for(lambda: browser.field("Your new key"), "the new key")
    browser.click(lambda: browser.css("button[aria-label='Rename key first']"), "rename")
    renamed = browser.field("New name for first")
    renamed.clear()
    renamed.send_keys("second")
    browser.button("Save name").click()
    browser.wait_for(lambda: "second" in browser.css("article.key h3").text, "the rename")
    browser.click(lambda: browser.css("button[aria-label='Limits of key second']"), "limits")
    limit = browser.field("Spending limit in USD for second")
    limit.clear()
    limit.send_keys("7")
    browser.button("Save limits").click()
    browser.wait_for(lambda: "$7.00" in browser.css("article.key").text, "the new limit")
    assert box.query("SELECT limit_nanos FROM api_key WHERE name = 'second'") == [(7 * 10**9,)]
    browser.click(lambda: browser.css("button[aria-label='Revoke key second']"), "revoke")
    browser.button("Yes, revoke it").click()
    browser.wait_for(lambda: "No keys yet" in browser.main_text(), "the revoke")
    assert proxy.missed == [] and browser.console_errors() == []


def test_a_top_up_and_a_card_setup_from_the_page_come_back_under_the_path(
    fresh_browser: Browser, box: PortalBox, proxy: PrefixStrippingProxy
) -> None:
    """Both Stripe buttons, clicked behind the proxy: Checkout is started (nothing the page
    sends is refused), and the return page's link leads to the billing page under the path."""
    browser, proxy.missed[:] = fresh_browser, []
    _sign_in_under_the_path(browser, box, proxy, "stripe-page-path@portal.test")
    for button, kind in (("Save a card", "setup"), ("Pay with Stripe", "payment")):
        browser.driver.get(proxy.url + "/billing")
        wait_page(browser, "Billing")
        if kind == "payment":
            browser.field("Amount in USD").send_keys("25")
        browser.button(button).click()
        browser.wait_for(
            lambda: browser.driver.current_url.startswith("https://checkout.stripe.com/"),
            "the way to Stripe Checkout",
        )
        session = box.double.session_by_url(browser.driver.current_url)
        assert session["mode"] == kind
        browser.console_errors()  # the checkout host resolves to nothing here, by design
        body, headers = box.double.webhook(box.double.complete(session["id"]))
        with box.http() as http:
            assert http.post("/api/v1/stripe/webhook", content=body, headers=headers).is_success
        browser.driver.get(session["success_url"].replace("{CHECKOUT_SESSION_ID}", session["id"]))
        browser.css(f"a[href='{PREFIX}/billing']").click()
        wait_page(browser, "Billing")
        assert browser.driver.current_url == proxy.url + "/billing"
    assert "Balance: $26.00" in browser.main_text()
    assert proxy.missed == [] and browser.console_errors() == []
