"""A 4xx HTML page in place of the provider's API: a wrong base URL reaching a web server or a
proxy (nginx's "404 Not Found", "405 Not Allowed", "410 Gone"). No API answered, so the
request is not at fault and no key is: the provider is unavailable (503 `provider_unavailable`
naming the page by its title, never its markup), tried on the next key as a 5xx is. A proxy's
413 (the request too large for it) stays the request's; a JSON 404 stays the upstream's."""

from __future__ import annotations

import json

import pytest

from tests.fakes.hostile_upstream import Act, HostileUpstream, responses_body
from tests.hostile.conftest import PATHS, ROUTES, HostileBox, body_of

pytestmark = pytest.mark.timeout(60)
KIND_OF = {"chat": "ho", "messages": "ha", "responses": "hr"}
TITLES = {404: "404 Not Found", 405: "405 Not Allowed", 410: "410 Gone"}
TOO_LARGE = "413 Request Entity Too Large"


def nginx(title: str) -> bytes:
    """nginx's own error page."""
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1>"
        "</center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    ).encode()


def page(status: int, title: str) -> Act:
    return Act(status, [nginx(title)], "text/html")


@pytest.mark.parametrize("route", ROUTES)
def test_an_html_404_page_moves_on_to_the_next_key(
    box: HostileBox, hostile: HostileUpstream, route: str
) -> None:
    """It was relayed as the upstream's 404, as if the user's model or route did not exist."""
    _, key = box.new_user("10")
    done = Act(200, [responses_body()]) if route == "responses" else body_of(KIND_OF[route])
    hostile.push(page(404, TITLES[404]), done)
    answer = box.post(key, route, KIND_OF[route], stream=False)
    assert answer.status_code == 200, answer.text
    assert len({seen.key for seen in hostile.seen}) == 2


@pytest.mark.parametrize("status", list(TITLES))
@pytest.mark.parametrize("route", ROUTES)
def test_an_html_4xx_page_on_every_key_is_the_provider_unavailable(
    box: HostileBox, hostile: HostileUpstream, route: str, status: int
) -> None:
    email, key = box.new_user("10")
    hostile.default = page(status, TITLES[status])
    answer = box.post(key, route, KIND_OF[route], stream=False)
    assert answer.status_code == 503, answer.text
    error = answer.json()["error"]
    assert "<" not in answer.text and "nginx" not in answer.text, answer.text
    assert f"HTTP {status}" in error["message"] and TITLES[status] in error["message"], error
    assert "key" not in error["message"], error
    if route == "messages":  # Anthropic's envelope, passing: the SDK may retry it
        assert answer.json()["type"] == "error" and error["type"] == "api_error", answer.text
        assert "x-should-retry" not in answer.headers
    else:
        assert error["code"] == "provider_unavailable", error
    assert len({seen.key for seen in hostile.seen}) == 2  # both keys, neither refused
    assert box.balance_nanos(email) == (10 * 10**9, 0)


def test_a_proxys_413_page_stays_the_requests(box: HostileBox, hostile: HostileUpstream) -> None:
    """Another key would be turned away the same: a smaller request is what passes."""
    _, key = box.new_user("10")
    hostile.default = page(413, TOO_LARGE)
    answer = box.post(key, "chat", "ho", stream=False)
    assert answer.status_code == 413, answer.text
    assert TOO_LARGE in answer.text and "<" not in answer.text, answer.text
    assert len(hostile.seen) == 1


def test_a_json_404_stays_the_upstreams(box: HostileBox, hostile: HostileUpstream) -> None:
    _, key = box.new_user("10")
    hostile.default = Act(404, [json.dumps({"detail": "Not Found"}).encode()])
    answer = box.post(key, "chat", "ho", stream=False)
    assert answer.status_code == 404, answer.text
    assert len(hostile.seen) == 1


def test_count_tokens_is_still_estimated_past_an_html_404(
    box: HostileBox, hostile: HostileUpstream
) -> None:
    """An Anthropic-compatible server without count_tokens, behind a proxy that answers the
    route it does not know with its page, gets the box's estimate, as its own 404 does."""
    _, key = box.new_user("10")
    hostile.default = page(404, TITLES[404])
    body = {"model": "ha/m", "messages": [{"role": "user", "content": "hi"}]}
    with box.http(key) as client:
        answer = client.post(PATHS["messages"] + "/count_tokens", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["input_tokens"] > 0, answer.text
