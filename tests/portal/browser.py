"""A real Chromium, headless, driven by Selenium: Debian's `chromium` and `chromium-driver`
(.ci/run installs them). Nothing is downloaded: the driver's path is always given, so Selenium
Manager never runs, and every host name but loopback resolves to nothing.

Outside CI a machine without the browser skips these tests with the reason; under CI=true a
missing browser fails them.
"""

from __future__ import annotations

import os
import shutil
import struct
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support import growing_pauses

CHROMIUM = Path(os.environ.get("CODELACE_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("CODELACE_TEST_CHROMEDRIVER", "/usr/bin/chromedriver"))
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
    # Only loopback: any other host name (checkout.stripe.com included) resolves to nothing.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
)


# One round trip each (Selenium's text and is_displayed are a command per element, polled):
# the first shown element of a tag whose rendered text reads exactly so.
_SHOWN = """
function shown(tag, text) {
  for (const element of document.getElementsByTagName(tag)) {
    if (element.innerText.trim() === text
        && element.checkVisibility({checkOpacity: true, checkVisibilityCSS: true})) return element;
  }
  return null;
}
"""
_FIND_FIELD = (
    _SHOWN
    + """
const label = shown("label", arguments[0]);
return label ? document.getElementById(label.htmlFor) : null;
"""
)
_FIND_SHOWN = _SHOWN + "return shown(arguments[0], arguments[1]);"


def require_browser() -> None:
    """Skip (fail under CI) when Chromium, its driver or Selenium is missing."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package (pip install -e .[dev])")
    if not missing:
        return
    reason = f"no browser for the portal tests: missing {', '.join(missing)}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason + " (CI must install chromium and chromium-driver)")
    pytest.skip(reason + " (apt-get install chromium chromium-driver)")


class Browser:
    """One headless Chromium with a fresh profile, and what the tests ask of it."""

    def __init__(self, prefs: dict[str, Any] | None = None) -> None:
        """`prefs`: the profile's preferences (e.g. cookies blocked), else Chromium's own."""
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.profile = Path(tempfile.mkdtemp(prefix="codelace-chromium-"))
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in (*FLAGS, f"--user-data-dir={self.profile}"):
            options.add_argument(flag)
        if prefs:
            options.add_experimental_option("prefs", prefs)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        service = Service(executable_path=str(CHROMEDRIVER))
        self.driver = webdriver.Chrome(service=service, options=options)
        self.driver.set_page_load_timeout(30)

    def quit(self) -> None:
        self.driver.quit()
        shutil.rmtree(self.profile, ignore_errors=True)

    def console_errors(self) -> list[str]:
        """The browser log's errors since the last call (the log is emptied by reading it)."""
        entries = self.driver.get_log("browser")
        return [e["message"] for e in entries if e["level"] == "SEVERE"]

    def wait_for(self, check: Callable[[], Any], what: str, timeout: float = 30) -> Any:
        """Poll `check` until it returns something true; fail naming `what`. The pause between
        polls grows from 50 ms to 200 ms: each poll is a few browser commands, and a long wait
        polled at 20 a second kept Chromium busy."""
        deadline, pause = time.monotonic() + timeout, growing_pauses(0.05, 0.2)
        while True:
            try:
                found = check()
            except Exception:  # an element not there yet, a page between loads
                found = None
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what} (at {self.driver.current_url})")
            time.sleep(next(pause))

    def click(self, find: Callable[[], Any], what: str) -> None:
        """Click what `find` returns, again if the page redrew it in between (stale)."""

        def attempt() -> bool:
            find().click()
            return True

        self.wait_for(attempt, what)

    def css(self, selector: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def all(self, selector: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        return list(self.driver.find_elements(By.CSS_SELECTOR, selector))

    def field(self, label: str) -> Any:
        """The input a visible label names (what a person reads, not an id)."""
        found = self.driver.execute_script(_FIND_FIELD, label)
        if found is None:
            raise AssertionError(f"no field labelled {label!r}")
        return found

    def button(self, text: str) -> Any:
        """The visible button that reads `text`."""
        found = self.driver.execute_script(_FIND_SHOWN, "button", text)
        if found is None:
            raise AssertionError(f"no button {text!r}")
        return found

    def main_text(self) -> str:
        return str(self.css("main").text)

    def screenshot_png(self, scale: float = 1.0) -> bytes:
        """The viewport as a PNG; scaled down (a quarter: 1/16 of the pixels) for checks."""
        import base64

        size = self.driver.execute_script("return [window.innerWidth, window.innerHeight]")
        clip = {"x": 0, "y": 0, "width": size[0], "height": size[1], "scale": scale}
        shot = self.driver.execute_cdp_cmd(
            "Page.captureScreenshot", {"format": "png", "clip": clip}
        )
        return base64.b64decode(shot["data"])


def png_pixels(png: bytes) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGB(A) bytes) of an 8-bit, non-interlaced PNG (what Chromium
    writes), with the scanline filters undone."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", b""
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, data = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        header = data if kind == b"IHDR" else header
        idat += data if kind == b"IDAT" else b""
        pos += 12 + length
    width, height, depth, color = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and color in (2, 6), (depth, color)
    channels = 3 if color == 2 else 4
    raw, stride = zlib.decompress(idat), width * channels
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        kind, line = (
            raw[y * (stride + 1)],
            bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)]),
        )
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, corner = previous[i], previous[i - channels] if i >= channels else 0
            line[i] = (line[i] + _predict(kind, left, up, corner)) & 0xFF
        rows.append(bytes(line))
        previous = line
    return width, height, rows


def _predict(kind: int, left: int, up: int, corner: int) -> int:
    if kind == 0:
        return 0
    if kind == 1:
        return left
    if kind == 2:
        return up
    if kind == 3:
        return (left + up) // 2
    estimate = left + up - corner
    near = min((abs(estimate - left), 0), (abs(estimate - up), 1), (abs(estimate - corner), 2))
    return (left, up, corner)[near[1]]


def luminance_spread(png: bytes, step: int = 4) -> tuple[float, int]:
    """(variance of the grey level, distinct grey levels) over a grid of the image's pixels:
    a blank page is one colour; a drawn one has text, lines and panels."""
    width, height, rows = png_pixels(png)
    channels = len(rows[0]) // width
    greys = []
    for y in range(0, height, step):
        row = rows[y]
        for x in range(0, width, step):
            r, g, b = row[x * channels : x * channels + 3]
            greys.append((299 * r + 587 * g + 114 * b) // 1000)
    mean = sum(greys) / len(greys)
    return sum((g - mean) ** 2 for g in greys) / len(greys), len(set(greys))
