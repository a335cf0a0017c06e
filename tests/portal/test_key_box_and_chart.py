"""The keys page's once-shown key after that key is revoked, a key's limits and expiry as they
read (on a phone too), and the daily spend chart's labels across screen widths (the 40rem
breakpoint included), in a real browser on a real box."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

from tests.portal.browser import Browser
from tests.portal.conftest import PortalBox, sign_in, wait_page


def _create_key(browser: Browser, name: str) -> str:
    """On the keys page, create a key named `name`; the full key the page shows."""
    before = browser.driver.execute_script(
        "return document.querySelector('.newkey input')?.value || ''"
    )
    browser.field("Name of the new key").send_keys(name)
    browser.button("Create key").click()
    browser.wait_for(lambda: browser.css(f"button[aria-label='Revoke key {name}']"), "its entry")
    full = browser.wait_for(
        lambda: (value := browser.field("Your new key").get_attribute("value")) != before and value,
        "the new key",
    )
    return str(full)


def _revoke(browser: Browser, name: str) -> None:
    browser.click(lambda: browser.css(f"button[aria-label='Revoke key {name}']"), "Revoke")
    browser.click(lambda: browser.button("Yes, revoke it"), "the confirmation")
    browser.wait_for(lambda: f"Key {name} is revoked" in browser.main_text(), "the revoke")


def _shown_keys(browser: Browser) -> list[str]:
    """The full keys the page still shows, in fields or as text."""
    return list(
        browser.driver.execute_script(
            "return [...document.querySelectorAll('input')].map((i) => i.value)"
            ".concat([document.querySelector('main').innerText])"
        )
    )


def test_the_once_shown_key_goes_when_that_key_is_revoked(cdp: Browser, box: PortalBox) -> None:
    """Create a key, revoke it: the box showing it in full (and its copy button) goes too, as
    a key that no longer works must not sit on the page under 'Copy it now'. Revoking another
    key leaves the box of the new one; creating another shows only the newest."""
    browser = cdp
    email = "revoke-shown@portal.test"
    box.cli("users", "create", email)
    box.cli("keys", "create", email, "--name", "older")
    sign_in(browser, box, email)
    browser.driver.get(box.url + "/keys")
    wait_page(browser, "API keys")
    first = _create_key(browser, "first")
    _revoke(browser, "older")  # another key: the new one's box stays
    assert any(first in text for text in _shown_keys(browser)), "the new key's box went"
    second = _create_key(browser, "second")
    assert not any(first in text for text in _shown_keys(browser)), "two new-key boxes"
    _revoke(browser, "second")
    shown = _shown_keys(browser)
    assert not any(second in text for text in shown), "the revoked key is still shown in full"
    assert browser.all(".newkey") == []
    assert "Copy key" not in browser.main_text()


def _label_heights(browser: Browser) -> list[float]:
    """The rendered heights (px) of the chart's labels: its peak and its first and last day."""
    heights = browser.driver.execute_script(
        "return [...document.querySelectorAll('svg.chart text, .chart-label')]"
        ".map((t) => t.getBoundingClientRect().height)"
    )
    return [float(h) for h in heights]


def test_the_chart_labels_keep_their_size_across_the_breakpoint(
    cdp: Browser, box: PortalBox
) -> None:
    """Widening the window by one pixel at 640 px must not change the labels' size: they were
    SVG text scaled with the chart, set to 24 user units below 40rem and 11 above, so they
    jumped from about 24 px to 11 px between 640 and 641 px. From 360 px to a desktop they
    now read at one size, inside the chart's figure."""
    browser = cdp
    sign_in(browser, box, "chart-widths@portal.test")
    browser.driver.get(box.url + "/usage")
    wait_page(browser, "Usage")
    sizes = {}
    for width in (360, 600, 639, 640, 641, 700, 1280):
        browser.driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": 800, "deviceScaleFactor": 1, "mobile": False},
        )
        browser.wait_for(
            lambda w=width: browser.driver.execute_script("return window.innerWidth") == w,
            f"the {width} px window",
        )
        heights = _label_heights(browser)
        assert len(heights) == 3, f"{width} px: {heights} (the peak and the two dates)"
        sizes[width] = heights
        inside = browser.driver.execute_script(
            "const f = document.querySelector('.chart-figure, svg.chart').getBoundingClientRect();"
            "return [...document.querySelectorAll('svg.chart text, .chart-label')].every((t) => {"
            "  const b = t.getBoundingClientRect();"
            "  return b.left >= f.left - 0.5 && b.right <= f.right + 0.5 && b.width > 0; })"
        )
        assert inside, f"{width} px: a label outside the chart"
    every = [h for heights in sizes.values() for h in heights]
    assert max(every) - min(every) <= 1, sizes
    assert min(every) >= 11, sizes


def test_closing_a_keys_form_when_the_list_cannot_be_loaded_says_so(
    cdp: Browser, box: PortalBox
) -> None:
    """Cancel in a key's form, and Keep it in the revoke question, draw the list anew; with the
    box unreachable the click did nothing visible (an uncaught error in the console only).
    The form now says the list could not be loaded, and stays."""
    browser = cdp
    email = "cancel-offline@portal.test"
    box.cli("users", "create", email)
    box.cli("keys", "create", email, "--name", "kept")
    sign_in(browser, box, email)
    browser.driver.get(box.url + "/keys")
    wait_page(browser, "API keys")
    browser.driver.execute_cdp_cmd("Network.enable", {})
    browser.driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*/portal/api/keys*"]})
    for opener, close in (("Rename key kept", "Cancel"), ("Revoke key kept", "Keep it")):
        browser.css(f"button[aria-label='{opener}']").click()
        browser.click(lambda c=close: browser.button(c), close)
        alert = browser.wait_for(lambda: browser.css("article.key [role=alert]").text, "the error")
        assert "could not be loaded again" in alert and "cannot be reached" in alert, alert
        assert browser.button(close).is_displayed()  # the form stays, to try again
        browser.driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
        browser.button(close).click()
        browser.wait_for(lambda o=opener: browser.css(f"button[aria-label='{o}']"), "the list")
        browser.driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*/portal/api/keys*"]})
    browser.console_errors()  # the blocked requests are logged, by design


def _facts(browser: Browser) -> dict[str, str]:
    """The first key's facts, term to value, as the page reads them."""
    terms = [t.text for t in browser.all("dl.facts dt")]
    return dict(zip(terms, [d.text for d in browser.all("dl.facts dd")], strict=True))


def test_a_keys_limits_read_as_they_were_set(cdp: Browser, box: PortalBox) -> None:
    """A limit is exact to the nano-dollar: one set to $123,456.789 read "$123,456.79", more
    than it is (and $1.005 read $1.01), beside a form that shows 123456.789. The reset read the
    database's word "weekly" where the form offers "Weekly (Monday 00:00 UTC)"."""
    browser = cdp
    email = "exact-limit@portal.test"
    box.cli("users", "create", email)
    box.cli("keys", "create", email, "--name", "capped", "--limit-usd", "123456.789",
            "--limit-reset", "weekly")  # fmt: skip
    sign_in(browser, box, email)
    browser.driver.get(box.url + "/keys")
    wait_page(browser, "API keys")
    facts = browser.wait_for(lambda: _facts(browser), "the key's facts")
    assert facts["Spending limit"] == "$123,456.789", facts
    assert facts["Limit resets"] == "Weekly (Monday 00:00 UTC)", facts


def test_what_a_key_spent_never_reads_past_its_limit(cdp: Browser, box: PortalBox) -> None:
    """A limit reads every digit ($0.999); what the key spent against it read in cents, rounded
    up: $0.996 spent read "$1.00", past the limit, while the key still worked (and less than
    a cent still reads every digit)."""
    browser = cdp
    email = "spent-under-limit@portal.test"
    box.cli("users", "create", email)
    box.cli("keys", "create", email, "--name", "capped", "--limit-usd", "0.999")
    with sqlite3.connect(box.db_path, timeout=10) as db:
        db.execute("UPDATE api_key SET spent_nanos = 996000000 WHERE name = 'capped'")
    sign_in(browser, box, email)
    browser.driver.get(box.url + "/keys")
    wait_page(browser, "API keys")
    facts = browser.wait_for(lambda: _facts(browser), "the key's facts")
    assert facts["Spending limit"] == "$0.999", facts
    assert facts["Spent against the limit"] == "$0.996", facts
    with sqlite3.connect(box.db_path, timeout=10) as db:  # less than a cent: not "$0.00"
        db.execute("UPDATE api_key SET spent_nanos = 500 WHERE name = 'capped'")
    browser.driver.refresh()
    wait_page(browser, "API keys")
    facts = browser.wait_for(lambda: _facts(browser), "the key's facts")
    assert facts["Spent against the limit"] == "$0.0000005", facts


def test_a_keys_figures_do_not_break_on_a_phone(cdp: Browser, box: PortalBox) -> None:
    """On a 360 px screen the facts' terms took their whole width ("Spent against the limit")
    and left the figures a column so narrow that "$123,456.79" broke as "$123,456.7" and "9":
    a figure now reads on one line, as the key's prefix does beside it."""
    browser = cdp
    email = "phone-limit@portal.test"
    box.cli("users", "create", email)
    box.cli("keys", "create", email, "--name", "capped", "--limit-usd", "123456.789")
    browser.driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 360, "height": 740, "deviceScaleFactor": 1, "mobile": True},
    )
    sign_in(browser, box, email)
    browser.driver.get(box.url + "/keys")
    wait_page(browser, "API keys")
    heights = browser.wait_for(
        lambda: browser.driver.execute_script(
            "const dds = [...document.querySelectorAll('dl.facts dd')];"
            "return dds.length"
            " && Object.fromEntries(dds.map((d) => [d.textContent, d.offsetHeight]))"
        ),
        "the key's facts",
    )
    one_line = heights[next(t for t in heights if t.startswith("cl_"))]
    assert heights["$123,456.789"] == one_line, heights
    assert browser.driver.execute_script("return document.documentElement.scrollWidth") == 360


def test_an_expired_key_says_it_has_expired(cdp: Browser, box: PortalBox) -> None:
    """A key past its expiry is refused (401) but was listed as any other, "Expires 2026-01-01
    00:00 UTC", a date a person must compare with today to learn why their tool stopped: it now
    reads "Expired" and says it no longer works; one still to expire reads "Expires"."""
    browser = cdp
    email = "expired-key@portal.test"
    box.cli("users", "create", email)
    box.cli("keys", "create", email, "--name", "later", "--expires", "2099-01-01")
    key = box.cli("keys", "create", email, "--name", "past", "--expires", "2099-01-01").split()[0]
    with sqlite3.connect(box.db_path, timeout=10) as db:  # what the year 2099 will do to it
        db.execute("UPDATE api_key SET expires_at = '2026-01-01 00:00:00' WHERE name = 'past'")
    with box.http(key) as http:
        assert http.get("/api/v1/auth/me").status_code == 401
    sign_in(browser, box, email)
    browser.driver.get(box.url + "/keys")
    wait_page(browser, "API keys")
    past = browser.wait_for(lambda: browser.css("article[aria-label='Key past']").text, "the key")
    assert "Expired\n2026-01-01 00:00 UTC: it no longer works" in past, past
    later = browser.css("article[aria-label='Key later']").text
    assert "Expires\n2099-01-01 00:00 UTC" in later and "Expired" not in later, later


def test_a_keys_expiry_is_the_boxs_word_not_the_browsers_clock(
    cdp: Browser, box: PortalBox
) -> None:
    """The list carries the box's `expired` (one source of truth: the box refuses the key by
    its own clock), but the page decided "Expired" by the computer's clock: a computer two days
    behind listed a key the box refuses (401 key_expired) as working, "Expires ...", and one
    ahead would call a working key dead."""
    browser = cdp
    email = "skewed-clock@portal.test"
    box.cli("users", "create", email)
    key = box.cli("keys", "create", email, "--name", "gone", "--expires", "2099-01-01").split()[0]
    box.cli("keys", "create", email, "--name", "works", "--expires", "2099-01-01")
    hour_ago = (datetime.now(UTC) - timedelta(hours=1)).replace(tzinfo=None)
    soon = (datetime.now(UTC) + timedelta(days=1)).replace(tzinfo=None)
    with sqlite3.connect(box.db_path, timeout=10) as db:
        for name, at in (("gone", hour_ago), ("works", soon)):
            at_text = at.isoformat(" ")
            db.execute("UPDATE api_key SET expires_at = ? WHERE name = ?", (at_text, name))
    with box.http(key) as http:
        assert http.get("/api/v1/auth/me").status_code == 401
    behind = "const real = Date.now; Date.now = () => real() - 2 * 86400e3;"
    added = browser.driver.execute_cdp_cmd(
        "Page.addScriptToEvaluateOnNewDocument", {"source": behind}
    )
    try:
        sign_in(browser, box, email)
        browser.driver.get(box.url + "/keys")
        wait_page(browser, "API keys")
        gone = browser.wait_for(lambda: browser.css("article[aria-label='Key gone']").text, "key")
        works = browser.css("article[aria-label='Key works']").text
    finally:
        browser.driver.execute_cdp_cmd(
            "Page.removeScriptToEvaluateOnNewDocument", {"identifier": added["identifier"]}
        )
    assert "Expired\n" in gone and "it no longer works" in gone, gone
    assert "Expires\n" in works and "Expired" not in works, works
