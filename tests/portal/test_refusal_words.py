"""What the box's refusals say to a person on the portal, at the HTTP level: a rate limit's wait
in words (not a count of seconds), a top-up amount out of range as out of range."""

from __future__ import annotations

import re

import pytest

from codelace_box.accounts.ratelimit import wait_in_words
from tests.portal.conftest import PortalBox


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (1, "1 second"),
        (40, "40 seconds"),
        (59, "59 seconds"),
        (60, "1 minute"),
        (61, "2 minutes"),  # rounded up: never sooner than the limit allows
        (850, "15 minutes"),
        (3600, "1 hour"),
        (3601, "1 hour 1 minute"),
        (5400, "1 hour 30 minutes"),
        (86400, "24 hours"),
    ],
)
def test_a_wait_in_words(seconds: int, words: str) -> None:
    assert wait_in_words(seconds) == words


def test_a_sign_in_rate_limit_says_its_wait_in_minutes(box: PortalBox) -> None:
    """The sixth code asked for one address within the 600 s window is a 429 whose message
    read 'try again in 600 s'; it now reads 'try again in 10 minutes' (Retry-After stays in
    seconds, for programs)."""
    email = "rate-words@portal.test"
    with box.http() as client:
        for _ in range(5):
            sent = client.post(
                "/portal/api/signin/code", json={"email": email}, headers={"origin": box.url}
            )
            assert sent.status_code == 200, sent.text
        refused = client.post(
            "/portal/api/signin/code", json={"email": email}, headers={"origin": box.url}
        )
    assert refused.status_code == 429, refused.text
    assert 590 <= int(refused.headers["retry-after"]) <= 600
    message = refused.json()["error"]["message"]
    assert message.endswith("try again in 10 minutes"), message
    assert not re.search(r"\d s\b", message), message


@pytest.mark.parametrize(
    ("typed", "code", "said"),
    [
        ("9" * 33, "amount_too_large", "the largest top-up is 10000 USD"),
        ("1" + "0" * 79, "amount_too_large", "the largest top-up is 10000 USD"),
        ("-" + "9" * 40, "amount_too_small", "the smallest top-up is 10 USD"),
        ("0." + "0" * 40 + "1", "amount_too_small", "the smallest top-up is 10 USD"),
        ("10." + "0" * 40 + "1", "invalid_amount", "at most two decimals"),
        ("$" + "9" * 33, "amount_too_large", "the largest top-up is 10000 USD"),
        ("9" * 1001, "invalid_amount", "too long for an amount (the largest top-up is 10000"),
    ],
)
def test_a_long_top_up_amount_is_judged_as_the_number_it_is(
    box: PortalBox, typed: str, code: str, said: str
) -> None:
    """An amount typed with more than 32 characters (33 nines) was refused as 'must be a number
    of US dollars' though it is one: too large. It is now judged by its value, as a short one
    is; nothing is started at Stripe."""
    sessions = len(box.double.sessions)
    with box.http() as client:
        email = f"long-amount-{len(typed)}@portal.test"  # each its own sign-in budget
        csrf = box.sign_in_http(client, email)["csrf_token"]
        refused = client.post(
            "/portal/api/topup",
            json={"amount_usd": typed},
            headers={"origin": box.url, "x-csrf-token": csrf},
        )
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert error["code"] == code and error["param"] == "amount_usd", error
    assert said in error["message"], error
    assert len(box.double.sessions) == sessions
