"""The portal's usage page with the smallest charges there are, in a real browser on a real box:
a request that cost a tenth of a micro-dollar reads as what it cost, never $0.00 beside a
total that is not zero; a balance below zero says so, and what brings the calls back."""

from __future__ import annotations

import sqlite3

from tests.fakes.openai_upstream import Reply
from tests.portal.browser import Browser
from tests.portal.conftest import MODEL, PortalBox, sign_in, wait_page

TINY = "fake/tiny-test"  # $0.10 per 1M tokens: one token is 100 nano-USD


def test_a_tenth_of_a_micro_dollar_is_not_shown_as_nothing(cdp: Browser, box: PortalBox) -> None:
    """usd() showed at most 6 decimals, so a request of one token at $0.10 per 1M tokens
    ($0.0000001) read $0.00 in the recent requests while the total beside it read $0.000124:
    nothing in the table added up to it. A charge under a cent now shows every digit it has,
    down to the nano-dollar it is counted in."""
    browser = cdp
    box.cli("models", "set", TINY, "--input-per-1m", "0.1", "--output-per-1m", "0.1",
            "--provider", "fake", "--upstream-model", "gpt-test")  # fmt: skip
    box.until_served(TINY)
    email, key = box.new_user("1")
    body = {"model": TINY, "messages": [{"role": "user", "content": "hi"}]}
    for prompt in (1, 1234):  # under the hold ("hi" with the default output cap)
        box.fake.push(Reply(content="ok", prompt_tokens=prompt, completion_tokens=0))
        with box.http(key) as http:
            answer = http.post("/v1/chat/completions", json=body)
            assert answer.status_code == 200, answer.text
    sign_in(browser, box, email)
    browser.driver.get(box.url + "/usage")
    wait_page(browser, "Usage")
    browser.wait_for(lambda: browser.all("main tbody tr"), "the recent requests")
    costs = browser.driver.execute_script(
        "return [...document.querySelectorAll('main .scroll tbody tr')]"
        ".map((r) => r.cells[4].textContent)"
    )
    assert sorted(costs) == ["$0.0000001", "$0.0001234"], costs
    text = browser.main_text()
    assert "Total cost\n$0.0001235" in text, text


def test_a_balance_below_zero_says_why_and_what_brings_calls_back(
    cdp: Browser, box: PortalBox
) -> None:
    """A refund or dispute of credit already spent leaves the balance below zero, and every call
    is then a 402 until it is topped up. The home and billing pages showed "-$12.35" alone and
    the top-up form still said "At least $10.00": a person paying $10 was still refused. Both
    pages now say the balance is below zero, why, and that calls are refused until more than it
    is added."""
    browser = cdp
    email, key = box.new_user("0")
    with sqlite3.connect(box.db_path, timeout=10) as db:  # what a dispute after the spend leaves
        db.execute('UPDATE "user" SET balance_nanos = ? WHERE email = ?', (-12_345_000_000, email))
    sign_in(browser, box, email)
    notice = browser.css("main .notice")
    assert "below zero" in notice.text and "refund" in notice.text, notice.text
    assert "more than $12.35" in notice.text, notice.text
    browser.driver.get(box.url + "/billing")
    wait_page(browser, "Billing")
    notice = browser.css("main .notice")
    assert "more than $12.35" in notice.text, notice.text
    assert "Balance: -$12.35" in browser.main_text()
    with box.http(key) as http:  # what the notice says of the calls
        body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
        assert http.post("/v1/chat/completions", json=body).status_code == 402
    assert not browser.console_errors()
