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
