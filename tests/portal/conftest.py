"""Fixtures of the portal suite: a real box (SMTP sink for the codes, the Stripe double for
payments, the fake OpenAI upstream for inference) and a real headless Chromium driving it."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.accounts.conftest import smtp_sections
from tests.billing.conftest import SECRET_KEY, WEBHOOK_SECRET, stripe_section
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.smtp_server import RecordingSmtpServer
from tests.fakes.stripe_double import StripeDouble
from tests.portal.browser import Browser, require_browser
from tests.support import BoxDriver, ServerProcess, base_sections, free_port, write_config

MODEL = "fake/gpt-test"


@dataclass
class PortalBox(BoxDriver):
    """One running box and the test parts around it."""

    server: ServerProcess
    config: Path
    db_path: Path
    smtp: RecordingSmtpServer
    double: StripeDouble
    fake: FakeOpenAI

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10) as db:
            return db.execute(sql, params).fetchall()

    def sign_in_http(self, client: httpx.Client, email: str) -> dict[str, Any]:
        """Sign a plain HTTP client in through the portal's endpoints (the code from the sink)."""
        verified = self.verify_answer(client, email)
        assert verified.status_code == 200, verified.text
        body: dict[str, Any] = verified.json()
        return body

    def verify_answer(
        self, client: httpx.Client, email: str, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        """Ask for a code and verify it, with the page's Origin (and `headers`): the verify
        call's raw answer."""
        sent = {"origin": self.url, **(headers or {})}
        before = len(self.smtp.messages_to(email))
        asked = client.post("/portal/api/signin/code", json={"email": email}, headers=sent)
        assert asked.status_code == 200, asked.text
        code = self.smtp.wait_for(email, count=before + 1).code
        return client.post(
            "/portal/api/signin/verify", json={"email": email, "code": code}, headers=sent
        )


@pytest.fixture(scope="module")
def smtp() -> Iterator[RecordingSmtpServer]:
    server = RecordingSmtpServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stripe_double() -> Iterator[StripeDouble]:
    double = StripeDouble(SECRET_KEY, WEBHOOK_SECRET).start()
    yield double
    double.stop()


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI().start()
    yield server
    server.stop()


def start_box(
    folder: Path,
    smtp: RecordingSmtpServer,
    double: StripeDouble,
    fake: FakeOpenAI,
    **sections: dict[str, Any],
) -> PortalBox:
    """A box mailing to the sink, paying through the double, serving one fake model."""
    merged = base_sections(folder, free_port())
    merged["email"] = smtp_sections(smtp)
    merged["stripe"] = stripe_section(double)
    for name, keys in sections.items():
        merged.setdefault(name, {}).update(keys)
    config = write_config(folder / "codelace.toml", merged)
    server = ServerProcess(config, int(merged["server"]["port"]))
    box = PortalBox(server, config, Path(merged["database"]["path"]), smtp, double, fake)
    box.cli("providers", "add", "fake", "--kind", "openai", "--base-url", fake.base_url,
            "--key", "sk-fake-portal-0001")  # fmt: skip
    box.cli("models", "set", MODEL, "--input-per-1m", "2.5", "--output-per-1m", "10")
    server.start()
    return box


@pytest.fixture(scope="module")
def box(
    tmp_path_factory: pytest.TempPathFactory,
    smtp: RecordingSmtpServer,
    stripe_double: StripeDouble,
    fake: FakeOpenAI,
) -> Iterator[PortalBox]:
    started = start_box(tmp_path_factory.mktemp("portal"), smtp, stripe_double, fake)
    yield started
    started.server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    require_browser()
    chromium = Browser()
    yield chromium
    chromium.quit()


@pytest.fixture
def fresh_browser(browser: Browser, box: PortalBox) -> Browser:
    """The module's browser, signed out, with an empty log."""
    browser.driver.get("about:blank")  # no request of a signed-in page is still in flight
    browser.driver.execute_cdp_cmd("Network.clearBrowserCookies", {})  # no portal page runs
    browser.console_errors()
    return browser


@pytest.fixture
def cdp(fresh_browser: Browser) -> Iterator[Browser]:
    """The signed-out browser; whatever a test set through the DevTools protocol (blocked
    URLs, requests held unanswered, a slow network, a screen size, more tabs) is undone."""
    yield fresh_browser
    driver = fresh_browser.driver
    driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
    driver.execute_cdp_cmd("Fetch.disable", {})  # requests held unanswered go on
    driver.execute_cdp_cmd(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    while len(driver.window_handles) > 1:
        driver.switch_to.window(driver.window_handles[-1])
        driver.close()
    driver.switch_to.window(driver.window_handles[0])


def wait_page(browser: Browser, title: str) -> None:
    browser.wait_for(lambda: browser.css("h1").text == title, f"the page {title!r}")


def sign_in(browser: Browser, box: PortalBox, email: str) -> None:
    """Sign in as a person does: type the address, read the mail, type the code."""
    driver = browser.driver
    driver.get(box.url + "/signin")
    browser.wait_for(lambda: browser.field("Email address"), "the sign-in form")
    before = len(box.smtp.messages_to(email))
    browser.field("Email address").send_keys(email)
    browser.button("Email me a code").click()
    code_field = browser.wait_for(lambda: browser.field("Sign-in code"), "the code step")
    code = box.smtp.wait_for(email, count=before + 1).code
    code_field.send_keys(code)
    browser.button("Sign in").click()
    browser.wait_for(lambda: "Your account" in browser.main_text(), "the home page")


def keys_here_signed_out_in_a_new_tab(browser: Browser, box: PortalBox) -> str:
    """The keys page in this tab, then sign-out in a new one (left current); this tab's handle."""
    driver = browser.driver
    driver.get(box.url + "/keys")
    wait_page(browser, "API keys")
    first: str = driver.current_window_handle
    driver.switch_to.new_window("tab")
    driver.get(box.url + "/")
    wait_page(browser, "Your account")
    browser.css("#signout").click()
    browser.wait_for(lambda: driver.current_url == box.url + "/signin", "the sign-out")
    return first
