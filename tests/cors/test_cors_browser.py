"""A real Chromium calls the box from a page of another origin, as a web chat UI does: fetch()
with a Bearer key to /v1/chat/completions, plain and streamed, reading the answer, the
exposed headers and an error; a page of an origin the box does not list is blocked."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.cors.test_cors_http import HELLO
from tests.gateway.conftest import MODEL, Box, BoxFactory
from tests.portal.browser import Browser, require_browser

pytestmark = pytest.mark.timeout(120)
ANSWER = "Hello from the fake upstream."

PAGE = """<!doctype html><meta charset="utf-8"><title>chat</title>
<script>
// What a web chat UI does: fetch() with the user's key, JSON or an SSE stream.
async function callBox(url, key, body) {
  const headers = {"authorization": "Bearer " + key, "content-type": "application/json",
                   "x-stainless-os": "Linux"};
  try {
    const response = await fetch(url, {method: "POST", headers, body: JSON.stringify(body)});
    const seen = {status: response.status, requestId: response.headers.get("x-request-id"),
                  cost: response.headers.get("x-codelace-cost-usd"),
                  retry: response.headers.get("x-should-retry")};
    if (!body.stream) return {...seen, json: await response.json()};
    const reader = response.body.getReader(), decoder = new TextDecoder();
    let text = "", content = "";
    for (;;) {
      const {done, value} = await reader.read();
      if (done) break;
      text += decoder.decode(value, {stream: true});
    }
    for (const line of text.split("\\n")) {
      if (!line.startsWith("data: ") || line === "data: [DONE]") continue;
      const delta = JSON.parse(line.slice(6)).choices[0]?.delta;
      content += (delta && delta.content) || "";
    }
    return {...seen, content, done: text.includes("data: [DONE]")};
  } catch (error) {
    return {blocked: String(error)};
  }
}
</script>
"""


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        """No request lines on the test's stderr."""


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The chat page, served from two loopback origins (two ports): (origin A, origin B)."""
    folder = tmp_path_factory.mktemp("page")
    (folder / "chat.html").write_text(PAGE, encoding="utf-8")
    handler = partial(_Quiet, directory=str(folder))
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), handler) for _ in range(2)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    first, second = (f"http://127.0.0.1:{s.server_address[1]}" for s in servers)
    yield first, second
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    require_browser()
    chromium = Browser()
    yield chromium
    chromium.quit()


def call_from_page(
    browser: Browser, page: str, box: Box, key: str, body: dict[str, Any],
    path: str = "/v1/chat/completions",
) -> Any:  # fmt: skip
    """Open the chat page of origin `page` and have it fetch the box's `path`."""
    browser.driver.get(page + "/chat.html")
    browser.driver.set_script_timeout(30)
    script = "const done = arguments[arguments.length - 1];" \
             "callBox(arguments[0], arguments[1], arguments[2]).then(done);"  # fmt: skip
    return browser.driver.execute_async_script(script, box.url + path, key, body)


def test_a_page_of_any_origin_calls_the_default_box(
    box_factory: BoxFactory, browser: Browser, pages: tuple[str, str]
) -> None:
    box = box_factory()  # server.cors_allow_origins = ["*"]
    _, key = box.new_user("5")
    plain = call_from_page(browser, pages[1], box, key, HELLO)
    assert plain["status"] == 200, plain
    assert plain["json"]["choices"][0]["message"]["content"] == ANSWER
    assert plain["requestId"].startswith("req_") and float(plain["cost"]) > 0


def test_a_listed_origin_calls_and_an_unlisted_one_is_blocked(
    box_factory: BoxFactory, browser: Browser, pages: tuple[str, str]
) -> None:
    listed, unlisted = pages
    box = box_factory(server={"cors_allow_origins": [listed]})
    _, key = box.new_user("5")

    plain = call_from_page(browser, listed, box, key, HELLO)
    assert plain["status"] == 200, plain
    assert plain["json"]["choices"][0]["message"]["content"] == ANSWER

    streamed = call_from_page(browser, listed, box, key, HELLO | {"stream": True})
    assert streamed["status"] == 200, streamed
    assert streamed["content"] == ANSWER and streamed["done"]
    assert streamed["requestId"].startswith("req_")

    wrong_key = call_from_page(browser, listed, box, "sk-cl-not-a-key", HELLO)
    assert wrong_key["status"] == 401  # the page reads the error, not a network failure
    assert wrong_key["json"]["error"]["code"]

    blocked = call_from_page(browser, unlisted, box, key, HELLO)
    assert blocked == {"blocked": "TypeError: Failed to fetch"}
    rows = box.query("SELECT COUNT(*) FROM usage_record")
    assert rows == [(2,)]  # the blocked page's preflight failed: its call never reached the box


def test_a_page_reads_that_a_charged_failure_is_not_to_be_retried(
    box_factory: BoxFactory, browser: Browser, pages: tuple[str, str]
) -> None:
    """The openai npm SDK in a page retries a 5xx unless the answer says `x-should-retry:
    false`, which it can read only if the box exposes it: an embeddings answer too large to
    relay is charged, and each retry the page could not be told against was charged again."""
    box = box_factory(gateway={"max_upstream_body_bytes": 100})
    _, key = box.new_user("5")
    body = {"model": MODEL, "input": ["one", "two", "three"], "encoding_format": "float"}
    failed = call_from_page(browser, pages[0], box, key, body, "/v1/embeddings")
    assert failed["status"] == 502, failed
    assert failed["json"]["error"]["code"] == "upstream_too_large"
    assert float(failed["cost"]) > 0 and failed["retry"] == "false"
