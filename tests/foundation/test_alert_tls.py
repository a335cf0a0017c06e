"""upkeep/alerts.py over HTTPS: the alert webhook's certificate is checked against the CAs the
box's calls trust (OpenSSL's: the system's store), not httpx's bundle alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from codelace_box.upkeep.alerts import Alerter
from tests.fakes.private_ca import serve_under_a_private_ca
from tests.fakes.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.timeout(30)


class TlsWebhookReceiver(WebhookReceiver):
    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}{self.path}"


async def test_an_alert_reaches_a_webhook_behind_a_private_ca(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An in-house chat's webhook (Mattermost, Rocket.Chat) behind the company's CA, installed
    # in the system's store: the alerts (httpx, certifi's bundle only) could not be sent.
    hook = TlsWebhookReceiver()
    hook.ssl_context = serve_under_a_private_ca(tmp_path, monkeypatch)
    hook.start()
    try:
        assert await Alerter(hook.url).alert("disk", "data", "the disk is 95% full")
        assert hook.texts() == ["codelace-box: the disk is 95% full"]
    finally:
        hook.stop()
