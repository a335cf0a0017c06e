"""Operator alerts to a Slack-compatible incoming webhook (`alerts.webhook_url`): a JSON POST
`{"text": ...}`, at most one per kind and subject every RATE_LIMIT_SEC, and one notice when
what it said is over (`resolve`: the error rate). An alert the webhook did
not take (down, an error status, a redirect) is not counted as sent: its watch asks again and it
goes out once the webhook answers, tried at most once every `retry_sec` whatever the number
waiting (a webhook that hangs costs one timeout a try, never one per alert); the outage is
logged once, and its end. A try ends after TIMEOUT_SEC whatever the webhook sends meanwhile.
Never blocks a request. The text is escaped as Slack asks (`&`, `<`, `>` as &amp; &lt; &gt;): an
alert's words that the box did not write itself (a path, a name) are no markup, so a
`<!channel>` among them pings nobody."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from codelace_box.trusted_cas import calls_tls

log = logging.getLogger("codelace_box.alerts")
RATE_LIMIT_SEC = 900.0
RETRY_SEC = 30.0
TIMEOUT_SEC = 10.0


@dataclass
class Alerter:
    """Sends alerts for one process; `clock` is monotonic seconds (tests may move it)."""

    webhook_url: str = field(repr=False)
    rate_limit_sec: float = RATE_LIMIT_SEC
    retry_sec: float = RETRY_SEC
    sent: dict[tuple[str, str], float] = field(default_factory=dict)
    failed_at: float | None = None  # the webhook's last failed try, while it fails

    async def alert(self, kind: str, subject: str, text: str, now: float | None = None) -> bool:
        """Post `text` unless the same kind of alert about `subject` went out recently. True
        when it is taken care of (sent now, or recently); False when the webhook did not take
        it, or was tried too recently since it failed: ask again later."""
        if not self.webhook_url:
            return True
        moment = time.monotonic() if now is None else now
        last = self.sent.get((kind, subject))
        if last is not None and moment - last < self.rate_limit_sec:
            return True
        if self.failed_at is not None and moment - self.failed_at < self.retry_sec:
            return False
        if not await self._post(text):
            self.failed_at = moment
            return False
        self.sent[(kind, subject)] = moment
        return True

    async def resolve(self, kind: str, subject: str, text: str, now: float | None = None) -> bool:
        """Post `text` (what recovered) once, if an alert of this kind about `subject` went out;
        a later alert of it is then sent at once, not held by RATE_LIMIT_SEC. True when taken
        care of (sent now, or nothing went out); False when the webhook did not take it, or
        was tried too recently since it failed: ask again later (as `alert`)."""
        if not self.webhook_url or (kind, subject) not in self.sent:
            return True
        moment = time.monotonic() if now is None else now
        if self.failed_at is not None and moment - self.failed_at < self.retry_sec:
            return False
        if not await self._post(text):
            self.failed_at = moment
            return False
        del self.sent[(kind, subject)]
        return True

    def adopt(
        self, kind: str, subject: str, age_sec: float | None, now: float | None = None
    ) -> None:
        """Take what the database says of an alert whose end is told (upkeep/watch.py): open,
        sent `age_sec` ago (by whichever process led then), or not open (None)."""
        if age_sec is None:
            self.sent.pop((kind, subject), None)
        else:
            moment = time.monotonic() if now is None else now
            self.sent[(kind, subject)] = moment - max(age_sec, 0.0)

    async def _post(self, text: str) -> bool:
        """One try; a failure logged when the webhook was working until now."""
        import httpx  # only here: serve starts without it (0.05-0.1 s of imports, a few MB)

        problem = ""
        message = {"text": f"codelace-box: {slack_escaped(text)}"}
        try:  # httpx's timeout is between two bytes: the whole answer gets TIMEOUT_SEC too;
            async with (  # its status says it all: the body is not read (it may be huge)
                asyncio.timeout(TIMEOUT_SEC),
                httpx.AsyncClient(timeout=TIMEOUT_SEC, verify=calls_tls()) as client,
                client.stream("POST", self.webhook_url, json=message) as answer,
            ):
                status = answer.status_code
            if status >= 300:
                problem = f"the alert webhook answered HTTP {status}"
        except TimeoutError:
            problem = f"the alert webhook cannot be reached: it took longer than {TIMEOUT_SEC:g} s"
        except httpx.HTTPError as exc:
            problem = f"the alert webhook cannot be reached: {type(exc).__name__}"
        except (httpx.InvalidURL, UnicodeError):  # the config's pattern takes http://[::1/...
            # and hosts that are no IDNA name (xn--a: idna's error is a UnicodeError); no secret
            problem = "the alert webhook's URL (alerts.webhook_url) is not a valid URL"
        if problem and self.failed_at is None:
            log.warning("%s; alerts are kept and tried again every %g s", problem, self.retry_sec)
        elif not problem and self.failed_at is not None:
            log.warning("the alert webhook answers again: the alerts kept are sent")
            self.failed_at = None
        return not problem


def slack_escaped(text: str) -> str:
    """`text` as plain words in a Slack message (its mrkdwn reads only these three)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
