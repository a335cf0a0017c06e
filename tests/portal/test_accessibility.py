"""Every portal page passes our own accessibility check in the browser (a11y.js: labels,
accessible names, contrast of every text, no positive tabindex, a language, one h1) and can
be used with the keyboard: Tab visits every control in the order of the page, each one
visibly focused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.portal.browser import Browser
from tests.portal.conftest import PortalBox, sign_in

A11Y_SCRIPT = (Path(__file__).parent / "a11y.js").read_text()
FOCUSABLE = (
    "a[href], button:not([disabled]), input:not([disabled]):not([type=hidden]), select, "
    'textarea, summary, [tabindex]:not([tabindex="-1"])'
)
MARK_FOCUSABLE = f"""
const found = Array.from(document.querySelectorAll({FOCUSABLE!r})).filter(
  (e) => e.getClientRects().length && getComputedStyle(e).visibility !== "hidden");
found.forEach((e, i) => e.setAttribute("data-order", String(i)));
return found.length;
"""
# The focused element: its place in the order, its outline, its tag, and the contrast of the
# outline against what it is drawn on (the parent's background: the outline stands off).
FOCUSED = """
const el = document.activeElement;
const rgb = (v) => (v.match(/[\\d.]+/g) || []).map(Number);
const lum = (c) => 0.2126 * ch(c[0]) + 0.7152 * ch(c[1]) + 0.0722 * ch(c[2]);
const ch = (x) => (x / 255 <= 0.03928 ? x / 255 / 12.92 : Math.pow((x / 255 + 0.055) / 1.055, 2.4));
let under = [255, 255, 255];
for (let n = el.parentElement; n; n = n.parentElement) {
  const bg = rgb(getComputedStyle(n).backgroundColor);
  if (bg.length === 3 || (bg.length === 4 && bg[3] > 0.5)) { under = bg; break; }
}
const [a, b] = [lum(rgb(getComputedStyle(el).outlineColor)), lum(under)].sort((x, y) => y - x);
return [el.getAttribute("data-order"), getComputedStyle(el).outlineStyle, el.tagName,
  (a + 0.05) / (b + 0.05)];
"""


def check_page(browser: Browser, what: str) -> None:
    """No accessibility problem, and Tab walks every control in order, focus visible."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    problems = browser.driver.execute_script(A11Y_SCRIPT)
    assert problems == [], f"{what}: {problems}"
    total = browser.driver.execute_script(MARK_FOCUSABLE)
    assert total >= 2, what
    browser.driver.execute_script("document.querySelector('[data-order=\"0\"]').focus()")
    seen = [browser.driver.execute_script(FOCUSED)]
    for _ in range(total):  # one Tab past the last: a stop the list does not know shows
        ActionChains(browser.driver).send_keys(Keys.TAB).perform()
        seen.append(browser.driver.execute_script(FOCUSED))
    assert [s[0] for s in seen] == [*map(str, range(total)), None], f"{what}: {seen}"
    assert seen.pop()[2] == "BODY", f"{what}: a stop after the last one: {seen}"
    unseen = [s for s in seen[1:] if s[1] == "none"]
    assert unseen == [], f"{what}: focus not visible on {unseen}"
    faint = [s for s in seen[1:] if s[3] < 3]  # WCAG 1.4.11: 3:1 for what shows the focus
    assert faint == [], f"{what}: a focus outline too faint on {faint}"
    assert browser.console_errors() == [], what


def open_page(browser: Browser, box: PortalBox, path: str, heading: str) -> None:
    browser.driver.get(box.url + path)
    browser.wait_for(lambda: browser.css("h1").text == heading, heading)


@pytest.fixture(scope="module")
def account(box: PortalBox) -> str:
    """A user with a key, some usage history and a payment."""
    email = "a11y@portal.test"
    box.cli("users", "create", email)
    box.cli("credit", email, "12", "--reason", "a11y test")
    box.cli("keys", "create", email, "--name", "laptop")
    return email


def test_the_sign_in_pages(fresh_browser: Browser, box: PortalBox) -> None:
    open_page(fresh_browser, box, "/signin", "Sign in")
    check_page(fresh_browser, "sign in")
    fresh_browser.field("Email address").send_keys("a11y-signin@portal.test")
    fresh_browser.button("Email me a code").click()
    fresh_browser.wait_for(lambda: fresh_browser.field("Sign-in code"), "the code step")
    check_page(fresh_browser, "the code step")
    fresh_browser.field("Sign-in code").send_keys("12")
    fresh_browser.button("Sign in").click()
    fresh_browser.wait_for(lambda: fresh_browser.css("[role=alert]").text, "the message")
    fresh_browser.console_errors()  # the refused code is a 400 in the log, by design
    check_page(fresh_browser, "the code step with an error")


PAGES = [
    ("/", "Your account"),
    ("/keys", "API keys"),
    ("/usage", "Usage"),
    ("/billing", "Billing"),
    ("/connect", "How to connect"),
]


@pytest.fixture
def account_browser(browser: Browser, box: PortalBox, account: str) -> Browser:
    """The module's browser, signed in as the account (once: codes are rate limited)."""
    browser.driver.set_window_size(1280, 900)
    browser.driver.get(box.url + "/")
    heading = browser.wait_for(
        lambda: browser.css("h1").text in ("Your account", "Sign in") and browser.css("h1").text,
        "a page",
    )
    if heading == "Sign in":
        sign_in(browser, box, account)
    browser.console_errors()
    return browser


@pytest.mark.parametrize("width", [1280, 360])
@pytest.mark.parametrize(("path", "heading"), PAGES)
def test_every_signed_in_page(
    account_browser: Browser, box: PortalBox, path: str, heading: str, width: int
) -> None:
    account_browser.driver.set_window_size(width, 900)
    open_page(account_browser, box, path, heading)
    check_page(account_browser, f"{path} at {width} px")


def _list_drawn_anew(browser: Browser, action: str) -> None:
    """Wait until a key's form closed by Cancel has the list drawn anew (the keyboard back on
    the `action` button that opened it): a button clicked sooner could be replaced, or the
    form it opened wiped, by that redraw (the test failed so on a loaded machine)."""
    browser.wait_for(
        lambda: browser.driver.switch_to.active_element.get_attribute("data-action") == action,
        "the key list drawn anew",
    )


def test_the_key_dialogs(account_browser: Browser, box: PortalBox) -> None:
    fresh_browser = account_browser
    open_page(fresh_browser, box, "/keys", "API keys")
    fresh_browser.wait_for(lambda: fresh_browser.css("article.key"), "the key list")
    fresh_browser.button("Create key").click()
    fresh_browser.wait_for(lambda: fresh_browser.field("Your new key"), "the new key")
    # The list is drawn anew after the new key is shown: its buttons replaced in the middle of
    # the Tab walk lost their marks (a failure now and then under load).
    fresh_browser.wait_for(lambda: len(fresh_browser.all("article.key")) >= 2, "the new key listed")
    check_page(fresh_browser, "the new key shown")
    fresh_browser.click(lambda: fresh_browser.all("button[aria-label^='Rename key']")[0], "rename")
    fresh_browser.wait_for(lambda: fresh_browser.button("Save name"), "the rename form")
    check_page(fresh_browser, "rename")
    fresh_browser.button("Cancel").click()
    _list_drawn_anew(fresh_browser, "rename")
    fresh_browser.click(
        lambda: fresh_browser.all("button[aria-label^='Limits of key']")[0], "limits"
    )
    fresh_browser.wait_for(lambda: fresh_browser.button("Save limits"), "the limits form")
    check_page(fresh_browser, "limits")
    fresh_browser.button("Cancel").click()
    _list_drawn_anew(fresh_browser, "limits")
    fresh_browser.click(lambda: fresh_browser.all("button[aria-label^='Revoke key']")[0], "revoke")
    fresh_browser.wait_for(lambda: fresh_browser.button("Keep it"), "the confirmation")
    check_page(fresh_browser, "revoke confirmation")


def test_the_return_pages(fresh_browser: Browser, box: PortalBox) -> None:
    for path, heading in [
        ("/billing/cancel", "Payment cancelled"),
        ("/billing/success", "Thank you"),
    ]:
        open_page(fresh_browser, box, path, heading)
        problems = fresh_browser.driver.execute_script(A11Y_SCRIPT)
        assert problems == [], f"{path}: {problems}"
        assert fresh_browser.console_errors() == [], path


SIDEWAYS = "return document.documentElement.scrollWidth - document.documentElement.clientWidth"


@pytest.mark.parametrize(("width", "scale"), [(320, 1), (640, 2)], ids=["320px", "zoom200"])
def test_no_sideways_scrolling_on_a_phone_or_at_200_percent(
    account_browser: Browser, box: PortalBox, width: int, scale: int
) -> None:
    """WCAG 1.4.10: at 320 CSS px, and 1280 px zoomed to 200 % (640 CSS px at 2 device pixels
    each), no page scrolls sideways, nor the keys page with its forms open and a new key shown,
    nor the usage page with its table open (wide tables scroll inside their own region)."""
    browser = account_browser
    driver = browser.driver
    metrics = {"width": width, "height": 700, "deviceScaleFactor": scale, "mobile": False}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    try:
        for path, heading in PAGES:
            open_page(browser, box, path, heading)
            assert driver.execute_script(SIDEWAYS) <= 0, f"{path} at {width} px"
        open_page(browser, box, "/usage", "Usage")
        browser.css("main summary").click()
        assert driver.execute_script(SIDEWAYS) <= 0, "the daily table open"
        open_page(browser, box, "/keys", "API keys")
        browser.button("Create key").click()
        browser.wait_for(lambda: browser.field("Your new key"), "the new key")
        browser.click(lambda: browser.all("button[aria-label^='Limits of key']")[0], "limits")
        browser.wait_for(lambda: browser.button("Save limits"), "the limits form")
        assert driver.execute_script(SIDEWAYS) <= 0, "the keys page, forms open"
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


MOVING = """
return Array.from(document.querySelectorAll("*")).map((el) => [el, getComputedStyle(el)])
  .filter(([, s]) => s.animationName !== "none" || s.scrollBehavior === "smooth"
    || s.transitionDuration.split(",").some((d) => parseFloat(d) > 0))
  .map(([el]) => el.outerHTML.slice(0, 80));
"""


def test_nothing_moves_for_who_asked_for_reduced_motion(
    account_browser: Browser, box: PortalBox
) -> None:
    """The portal has no animation; one added must stop under prefers-reduced-motion."""
    driver = account_browser.driver
    reduce = [{"name": "prefers-reduced-motion", "value": "reduce"}]
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": reduce})
    try:
        for path, heading in PAGES:
            open_page(account_browser, box, path, heading)
            assert driver.execute_script(MOVING) == [], path
    finally:
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})


def _ax_nodes(browser: Browser) -> list[dict[str, Any]]:
    """The page's accessibility tree, as Chromium gives it to a screen reader."""
    return list(browser.driver.execute_cdp_cmd("Accessibility.getFullAXTree", {})["nodes"])


def _roles_around(nodes: list[dict[str, Any]], words: str) -> list[str]:
    """The roles of the nodes that hold the text `words`, from it up to the page."""
    by_id = {n["nodeId"]: n for n in nodes}
    [node] = [n for n in nodes if n.get("role", {}).get("value") == "StaticText"
              and n.get("name", {}).get("value") == words]  # fmt: skip
    roles = []
    while node.get("parentId") in by_id:
        node = by_id[node["parentId"]]
        roles.append(node.get("role", {}).get("value"))
    return roles


def _main_busy(nodes: list[dict[str, Any]]) -> bool:
    [main] = [n for n in nodes if n.get("role", {}).get("value") == "main"]
    said = {p["name"]: p["value"].get("value") for p in main.get("properties", [])}
    return bool(said.get("busy"))


def test_loading_is_a_status_of_a_busy_main_not_its_content(cdp: Browser, box: PortalBox) -> None:
    """While the page's data came, 'Loading…' was the main landmark's content, and a screen
    reader read it as the page (then the page changed under it, unsaid). The main landmark is
    busy until the page is drawn (a screen reader waits for it), the word a status."""
    browser = cdp
    browser.driver.execute_cdp_cmd("Accessibility.enable", {})
    browser.driver.execute_cdp_cmd(
        "Fetch.enable", {"patterns": [{"urlPattern": "*/portal/api/session*"}]}
    )  # the box does not answer yet: the page stays loading
    browser.driver.get(box.url + "/")
    browser.wait_for(lambda: "Loading" in browser.main_text(), "the loading page")
    nodes = _ax_nodes(browser)
    assert _main_busy(nodes), "main is not busy while loading"
    assert "status" in _roles_around(nodes, "Loading…"), "the word is not a status"
    browser.driver.execute_cdp_cmd("Fetch.disable", {})  # the box answers
    browser.wait_for(lambda: browser.css("h1").text == "Sign in", "the sign-in page")
    assert not _main_busy(_ax_nodes(browser)), "main still busy once drawn"
