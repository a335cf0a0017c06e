"""The alert webhook (upkeep/alerts.py) and the key probe (catalog/keycheck.py) verify TLS with
one context per process: an httpx client built per try made a new one each time (loading the
CA bundle: 20-270 ms of the event loop's CPU), every 30 s while a webhook was down and on every
probe. Counted by watching calls to the standard library's `ssl.create_default_context` (a
profile hook: nothing of ours or of ssl's is replaced), against real servers on loopback."""

from __future__ import annotations

import ssl
import sys
from collections.abc import Awaitable, Iterator
from types import FrameType
from typing import Any, TypeVar

import pytest

from codelace_box.catalog.keycheck import check_key
from codelace_box.upkeep.alerts import Alerter
from tests.fakes.models_upstream import FakeModelsUpstream
from tests.fakes.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.timeout(30)
KEY = "sk-tls-reuse-test-key-ABCDEFGH1234"
T = TypeVar("T")


async def contexts_made(work: Awaitable[T]) -> tuple[int, T]:
    """How many SSL contexts `work` made (calls of ssl.create_default_context), and its result."""
    made = 0
    target = ssl.create_default_context.__code__

    def watch(frame: FrameType, event: str, arg: Any) -> None:
        nonlocal made
        if event == "call" and frame.f_code is target:
            made += 1

    sys.setprofile(watch)
    try:
        result = await work
    finally:
        sys.setprofile(None)
    return made, result


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeModelsUpstream]:
    fake = FakeModelsUpstream("openai", {KEY}).start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def hook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()


async def test_probes_after_the_first_make_no_ssl_context(upstream: FakeModelsUpstream) -> None:
    first = await check_key("openai", upstream.base_url, KEY)  # may make the process's one
    made, again = await contexts_made(check_key("openai", upstream.base_url, KEY))
    assert first.ok and again.ok, again
    assert made == 0
    wrong = await check_key("openai", upstream.base_url, KEY + "x")
    assert wrong.refused and KEY not in wrong.message  # the verdicts are as they were


async def test_webhook_tries_after_the_first_make_no_ssl_context(hook: WebhookReceiver) -> None:
    alerter = Alerter(hook.url, retry_sec=0.0)
    assert await alerter.alert("kind", "first", "one")
    hook.refuse_with = 503  # the webhook down: each try is another post
    try:
        made, taken = await contexts_made(alerter.alert("kind", "second", "two"))
        assert (made, taken) == (0, False)
        made, taken = await contexts_made(alerter.alert("kind", "second", "two", now=1e9))
        assert (made, taken) == (0, False)
    finally:
        hook.refuse_with = None
    assert await alerter.alert("kind", "second", "two", now=2e9)
    assert hook.texts() == ["codelace-box: one", "codelace-box: two"]
