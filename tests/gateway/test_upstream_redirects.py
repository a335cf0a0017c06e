"""An upstream's redirect is not followed: the request, with the operator's key in its headers,
goes only to the base URL the operator set, never to a host the upstream names (a compromised
or misconfigured upstream, or a proxy in between, answering 307 Location: elsewhere). The
client gets a 502 that says where the upstream pointed, so the operator can fix the base URL."""

from __future__ import annotations

import pytest

from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.gateway.conftest import MODEL, BoxFactory

pytestmark = pytest.mark.timeout(60)
HELLO = [{"role": "user", "content": "Say hello"}]
KEY = "sk-redirect-test-key-0001"


@pytest.mark.parametrize("status", [301, 302, 307, 308, 204])
def test_a_redirect_is_a_502_and_the_key_goes_nowhere_else(
    box_factory: BoxFactory, fake: FakeOpenAI, status: int
) -> None:
    elsewhere = FakeOpenAI().start()
    try:
        box = box_factory(keys=(KEY,), gateway={"max_retries": 0})
        _, key = box.new_user("5")
        target = f"{elsewhere.base_url}/chat/completions"
        fake.push(Reply(status=status, error={"message": "moved"}, headers={"location": target}))
        with box.http(key) as client:
            answer = client.post("/v1/chat/completions", json={"model": MODEL, "messages": HELLO})
        assert answer.status_code == 502, answer.text
        assert str(status) in answer.json()["error"]["message"]
        assert elsewhere.requests == []  # neither the body nor the key went there
    finally:
        elsewhere.stop()


def test_a_redirect_names_its_host_without_the_user_and_password_in_it(
    box_factory: BoxFactory, fake: FakeOpenAI
) -> None:
    """A Location with a user and password before its host (a proxy pointing at an internal
    address it reaches with credentials) is named by its host and port alone: the 502 reaches
    every user whose call met it, and the server log, as base URLs with a password never do."""
    box = box_factory(keys=(KEY,), gateway={"max_retries": 0})
    _, key = box.new_user("5")
    target = "http://svc-user:s3cret-Pa55@10.9.8.7:8443/v1/chat/completions?sig=abc"
    fake.push(Reply(status=307, error={"message": "moved"}, headers={"location": target}))
    with box.http(key) as client:
        answer = client.post("/v1/chat/completions", json={"model": MODEL, "messages": HELLO})
    assert answer.status_code == 502, answer.text
    message = answer.json()["error"]["message"]
    assert "http://10.9.8.7:8443" in message, message
    assert "s3cret" not in answer.text and "svc-user" not in answer.text
    assert "s3cret" not in box.server.log_text()
