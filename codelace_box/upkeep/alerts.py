"""Operator alerts to a Slack-compatible incoming webhook (`alerts.webhook_url`): a JSON POST
`{"text": ...}`, at most one per kind and subject every RATE_LIMIT_SEC; a webhook that does not
answer is logged, never retried in a loop, and never blocks a request."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

log = logging.getLogger("codelace_box.alerts")
RATE_LIMIT_SEC = 900.0
TIMEOUT_SEC = 10.0


@dataclass
class Alerter:
    """Sends alerts for one process; `clock` is monotonic seconds (tests may move it)."""

    webhook_url: str = field(repr=False)
    rate_limit_sec: float = RATE_LIMIT_SEC
    sent: dict[tuple[str, str], float] = field(default_factory=dict)

    async def alert(self, kind: str, subject: str, text: str, now: float | None = None) -> bool:
        """Post `text` unless the same kind of alert about `subject` went out recently; True
        when it was sent."""
        if not self.webhook_url:
            return False
        moment = time.monotonic() if now is None else now
        last = self.sent.get((kind, subject))
        if last is not None and moment - last < self.rate_limit_sec:
            return False
        self.sent[(kind, subject)] = moment
        import httpx  # only here: serve starts without it (httpx brings rich, 0.06-0.1 s)

        try:
            async with httpx.AsyncClient(timeout=TIMEOUT_SEC) as client:
                answer = await client.post(self.webhook_url, json={"text": f"codelace-box: {text}"})
            if answer.status_code >= 300:
                log.warning("the alert webhook answered HTTP %d", answer.status_code)
                return False
        except httpx.HTTPError as exc:
            log.warning("the alert webhook cannot be reached: %s", type(exc).__name__)
            return False
        return True
