"""Alerts whose webhook is down for a while (Slack's outage, a proxy answering 500): each alert
is kept and delivered once the webhook answers again, and the log says so once, not at every
try."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from pathlib import Path

import pytest

from tests.acceptance.cli_tools import Box
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.support import ServerProcess, eventually

pytestmark = pytest.mark.timeout(120)
FAST_TICK = {"CODELACE_UPKEEP_TICK_SEC": "0.2"}


def test_an_alert_the_webhook_refused_is_delivered_once_it_answers(
    tmp_path: Path, hook: WebhookReceiver
) -> None:
    """The webhook answered 500 when a provider key was taken out of rotation: that alert was
    counted as sent, and since it is sent when a key leaves the rotation, never again; the
    operator never heard of it (and 'no working key' only 15 minutes later)."""
    box = Box.create(tmp_path / "box", alerts={"webhook_url": hook.url})
    box.ok("providers", "add", "solo", "--kind", "openai", "--key", "sk-alert-solo-0001")
    box.ok("providers", "key-add", "solo", "--key", "sk-alert-solo-0002")
    server = ServerProcess(box.config, box.port, env=FAST_TICK).start()
    try:
        time.sleep(1)  # the upkeep's first look: both keys in rotation
        hook.refuse_with = 500
        box.sql("UPDATE provider_key SET failing = 1, failure_reason = 'HTTP 401' WHERE id = 1")
        eventually(lambda: hook.refused >= 3, "tries refused by the webhook")
        hook.refuse_with = None
        eventually(lambda: any("taken out of rotation" in t for t in hook.texts()), "the alert")
        time.sleep(1)  # more ticks: delivered once
    finally:
        assert server.stop() == 0
    assert sum("taken out of rotation" in t for t in hook.texts()) == 1, hook.texts()
    refusals = server.log_text().count("the alert webhook answered HTTP 500")
    assert refusals == 1, f"the webhook's refusals logged {refusals} times"
    assert "the alert webhook answers again" in server.log_text()


class HeaderDrip:
    """A webhook (a broken proxy) on 127.0.0.1 that answers its status line, then a header line
    every second for a minute: never a whole answer, never 10 s without a byte."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.stopping = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.getsockname()[1]}/services/T000/B000/XXXX"

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._drip, args=(client,), daemon=True).start()

    def _drip(self, client: socket.socket) -> None:
        with client, contextlib.suppress(OSError):  # the box gives up and hangs up: as it should
            client.recv(65536)
            client.sendall(b"HTTP/1.1 200 OK\r\n")
            for n in range(60):
                if self.stopping.wait(1):
                    return
                client.sendall(b"x-wait-%d: 1\r\n" % n)

    def stop(self) -> None:
        self.stopping.set()
        self.server.close()


def test_a_webhook_that_answers_a_byte_at_a_time_is_given_up(tmp_path: Path) -> None:
    """A webhook (or a proxy before it) that answered a line every second never reached the
    10 s timeout, which counts between two bytes: the upkeep waited on it as long as it went
    on, its backups and other alerts with it. The whole answer is now given 10 s."""
    drip = HeaderDrip()
    box = Box.create(tmp_path / "box", alerts={"webhook_url": drip.url})
    box.ok("providers", "add", "solo", "--kind", "openai", "--key", "sk-alert-solo-0001")
    server = ServerProcess(box.config, box.port, env=FAST_TICK).start()
    try:
        time.sleep(1)  # the upkeep's first look
        box.sql("UPDATE provider_key SET failing = 1, failure_reason = 'HTTP 401'")
        server.wait_for_log("the alert webhook cannot be reached: it took longer than", wait=25)
    finally:
        assert server.stop() == 0
        drip.stop()


def test_a_webhook_answering_a_huge_body_is_not_read_into_memory(
    tmp_path: Path, hook: WebhookReceiver
) -> None:
    """The alert's answer was read whole into the serving process, however big (256 MiB
    here): only its status says whether the alert was taken."""
    if not Path("/proc/self/status").exists():
        pytest.skip("reads the server's peak memory from /proc")
    box = Box.create(tmp_path / "box", alerts={"webhook_url": hook.url})
    box.ok("providers", "add", "solo", "--kind", "openai", "--key", "sk-alert-solo-0001")
    hook.huge = True
    server = ServerProcess(box.config, box.port, env=FAST_TICK).start()
    try:
        assert server.process is not None
        time.sleep(1)  # the upkeep's first look
        before = _peak_memory_mib(server.process.pid)
        box.sql("UPDATE provider_key SET failing = 1, failure_reason = 'HTTP 401'")
        eventually(lambda: any("no working key" in t for t in hook.texts()), "the alerts")
        time.sleep(0.5)
        grown = _peak_memory_mib(server.process.pid) - before
    finally:
        assert server.stop() == 0
    assert grown < 64, f"the alerts took {grown} MiB more"
    assert "alert webhook" not in server.log_text(), "the alerts were taken"


def _peak_memory_mib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
    raise AssertionError("no VmHWM")


def test_a_webhook_url_whose_host_is_no_idna_name_stops_no_backup(tmp_path: Path) -> None:
    """alerts.webhook_url with a host that is no valid IDNA name (`xn--a`, a punycode typo)
    passes the config's check, and posting to it raised idna's error rather than failing the
    try: each upkeep tick ended at its first alert (a key out of rotation), so the scheduled
    backups and the error-rate watch after it never ran again."""
    webhook_url = "http://xn--a.example/services/T000/B000/XXXX"
    box = Box.create(
        tmp_path / "box",
        alerts={"webhook_url": webhook_url},
        backup={"every_hours": 1, "dir": "backups"},
    )
    box.ok("providers", "add", "solo", "--kind", "openai", "--key", "sk-alert-solo-0001")
    box.sql("UPDATE provider_key SET failing = 1, failure_reason = 'HTTP 401'")
    server = ServerProcess(box.config, box.port, env=FAST_TICK).start()
    try:
        eventually(lambda: list((box.root / "backups").glob("codelace-*.db")), "a backup", 30)
        time.sleep(1)  # more ticks
    finally:
        assert server.stop() == 0
    log_text = server.log_text()
    assert log_text.count("(alerts.webhook_url) is not a valid URL") == 1, log_text
    assert "background upkeep" not in log_text, log_text


def test_an_alerts_words_are_escaped_for_slack(tmp_path: Path, hook: WebhookReceiver) -> None:
    """Slack reads `&`, `<` and `>` in a message's text as its markup (`<!channel>` pings the
    whole channel, `<mailto:x|y>` is a link): words in an alert that the box did not write
    itself (a path, an upstream's or a user's words) went raw. They are escaped as Slack asks
    (&amp; &lt; &gt;), which its clients show as the characters they were."""
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    folder = blocker / "<!channel> & <mailto:a@example.com|backups>"
    box = Box.create(tmp_path / "box", backup={"every_hours": 1, "dir": str(folder)},
                     alerts={"webhook_url": hook.url})  # fmt: skip
    server = ServerProcess(box.config, box.port, env=FAST_TICK).start()
    try:
        eventually(lambda: any("backup failed" in t for t in hook.texts()), "the alert")
    finally:
        assert server.stop() == 0
    (text,) = hook.texts()
    assert text.startswith("codelace-box: the scheduled backup failed: "), text
    escaped = "&lt;!channel&gt; &amp; &lt;mailto:a@example.com|backups&gt;"
    assert escaped in text and "<" not in text and ">" not in text, text
