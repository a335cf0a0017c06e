"""What `codelace_refusals_total` and the dashboard's refusal tally count: requests the box
itself refused before any upstream call (402, 404, 429), not an upstream's own 404 or 429
relayed to the client (those are upstream errors, with a usage row of their own)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.openai_upstream import Reply
from tests.gateway.conftest import MODEL, BoxFactory
from tests.observability.test_metrics_and_logs import scrape, total
from tests.support import TLS, ServerProcess, base_sections, free_port, run_cli, write_config

HELLO = [{"role": "user", "content": "Hello"}]


def test_an_upstreams_404_or_429_is_an_upstream_error_not_a_refusal(
    box_factory: BoxFactory,
) -> None:
    """An operator reads refusals{status="429"} as "the accounts' rpm limits bite": an
    upstream's rate limiting relayed as 429 was counted there (and in upstream_errors), and an
    upstream's 404 as a refusal `upstream_404`."""
    box = box_factory(gateway={"max_retries": 0})
    _, key = box.new_user("10")
    box.fake.push(Reply(status=429, error={"message": "slow down"}))
    box.fake.push(Reply(status=404, error={"message": "no such model upstream"}))
    with box.http(key) as client:
        statuses = [
            client.post("/v1/chat/completions", json={"model": MODEL, "messages": HELLO})
            for _ in range(2)
        ]
        refused = client.post(
            "/v1/chat/completions", json={"model": "fake/not-in-the-catalog", "messages": HELLO}
        )
    assert [s.status_code for s in statuses] == [429, 404] and refused.status_code == 404
    samples = scrape(box)
    assert total(samples, "codelace_upstream_errors_total", provider="fake") == 2
    assert total(samples, "codelace_refusals_total", status="429") == 0
    assert total(samples, "codelace_refusals_total", status="404") == 1
    assert total(samples, "codelace_refusals_total", code="model_not_found") == 1
    box.server.stop()
    tally = box.query("SELECT status, code, count FROM refusal_count")
    assert tally == [(404, "model_not_found", 1)]


class RateLimitedCounts(FakeAnthropic):
    """An Anthropic upstream whose count_tokens is rate limited."""

    async def _count_tokens(self, request: web.Request) -> web.Response:
        await request.read()
        body = {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}
        return web.json_response(body, status=429)


def test_an_upstreams_429_on_count_tokens_is_not_a_refusal(tmp_path: Path) -> None:
    """count_tokens goes to an Anthropic upstream outside the metered call: its 429 was
    counted as the box's own refusal too."""
    upstream = RateLimitedCounts(api_keys=("anth-key",)).start()
    sections = base_sections(tmp_path, free_port())
    config = write_config(tmp_path / "codelace.toml", sections | {"gateway": {"max_retries": 0}})
    server = ServerProcess(config, int(sections["server"]["port"]))
    try:
        for args in (
            ("providers", "add", "anth", "--kind", "anthropic", "--base-url", upstream.base_url,
             "--key", "anth-key"),
            ("models", "set", "anth/claude", "--input-per-1m", "1", "--output-per-1m", "2"),
            ("users", "create", "a@example.com"),
        ):  # fmt: skip
            assert run_cli(config, *args).returncode == 0, args
        key = run_cli(config, "keys", "create", "a@example.com").stdout.split()[0]
        server.start()
        answer = httpx.post(
            f"{server.base_url}/v1/messages/count_tokens",
            json={"model": "anth/claude", "messages": HELLO},
            headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
            timeout=30,
            verify=TLS,
        )
        assert answer.status_code == 429, answer.text
        scraped = httpx.get(f"{server.base_url}/metrics", timeout=10, verify=TLS).text
        refused = [
            sample
            for family in text_string_to_metric_families(scraped)
            for sample in family.samples
            if sample.name == "codelace_refusals_total"
        ]
        assert refused == [], refused
    finally:
        server.stop()
        upstream.stop()


def test_a_disabled_metrics_endpoint_scraped_is_no_refusal(box_factory: BoxFactory) -> None:
    """With metrics.enabled = false, a Prometheus still scraping /metrics every 15 s gets the
    404 of a path with no route, in the OpenAI envelope; the refusal tally (the dashboard's
    "requests refused" of the accounts, 402/404/429) was inflated by one a scrape."""
    box = box_factory(metrics={"enabled": False}, log={"format": "json"})
    for _ in range(3):
        answer = httpx.get(box.url + "/metrics", timeout=10, verify=TLS)
        assert answer.status_code == 404
        assert answer.json()["error"]["type"] == "not_found_error"
    box.server.stop()
    assert box.query("SELECT status, code, count FROM refusal_count") == []
    lines = [json.loads(line) for line in box.server.log_text().splitlines() if line.strip()]
    scraped = [line for line in lines if line.get("status") == 404]
    assert len(scraped) == 3 and {line["route"] for line in scraped} == {"(unmatched)"}


def test_a_stop_while_another_program_holds_the_write_lock_exits_0(tmp_path: Path) -> None:
    """SIGTERM while another program held a write transaction on the database (an operator's
    sqlite3 shell) and a refusal counted since the last write of the counts: serve's stop wrote
    them, waited out the lock and died with a traceback, exit 1, the database left unclosed.
    The counts it cannot write are one log line; the stop goes on and exits 0."""
    import signal

    import apsw

    from tests.acceptance.cli_tools import Box

    box = Box.create(tmp_path / "box")
    box.ok("users", "create", "ivy@refusals.test")
    key = box.ok("keys", "create", "ivy@refusals.test").strip().split()[-1]
    server = ServerProcess(box.config, box.port).start()
    shell = apsw.Connection(str(box.db_path))
    try:
        refused = httpx.post(
            f"{server.base_url}/v1/chat/completions",
            json={"model": "no/such-model", "messages": HELLO},
            headers={"authorization": f"Bearer {key}"},
            verify=TLS,
        )
        assert refused.status_code == 404
        shell.execute("BEGIN IMMEDIATE")
        assert server.process is not None
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(30) == 0, server.log_text()[-3000:]
    finally:
        shell.close()
        server.kill()
    log = server.log_text()
    assert "Traceback" not in log, log[-3000:]
    assert "1 refusal counted since the last write is not written" in log, log[-3000:]


def _expecting_continue(url: str, path: str, length: int) -> bytes:
    """A POST's head announcing `length` bytes with `Expect: 100-continue`, as curl sends a
    body over 1 MiB: the head of the answer (the body is never sent)."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\nExpect: 100-continue\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(head.encode())
        return connection.recv(4096)


def test_a_405_or_413_on_a_real_route_is_counted_under_that_route(
    box_factory: BoxFactory,
) -> None:
    """A GET of /v1/chat/completions (405) and a body over server.max_body_bytes posted to it
    (413) were counted under route="(unmatched)", as a path no route serves: they are the
    route's own requests; a path with no route stays "(unmatched)". So is a 413 answered from
    the head alone (`Expect: 100-continue`), in /metrics and in the access line."""
    box = box_factory(server={"max_body_bytes": 65536})
    _, key = box.new_user("10")
    with httpx.Client(base_url=box.url, timeout=10, verify=TLS) as client:
        assert client.get("/v1/chat/completions").status_code == 405
        big = client.post(
            "/v1/chat/completions",
            content=b"x" * 70000,
            headers={"content-type": "application/json"},
        )
        assert big.status_code == 413, big.text
        chunked = client.post(
            "/v1/chat/completions",
            content=iter([b"x" * 40000, b"x" * 40000]),
            headers={"content-type": "application/json", "authorization": f"Bearer {key}"},
        )
        assert chunked.status_code == 413, chunked.text
        assert client.get("/v1/no-such-route").status_code == 404
    assert _expecting_continue(box.url, "/v1/messages", 70000).startswith(b"HTTP/1.1 413 ")
    samples = scrape(box)
    counted = "codelace_http_requests_total"
    route = "/v1/chat/completions"
    assert total(samples, counted, route=route, status="405") == 1, samples[counted]
    assert total(samples, counted, route=route, status="413") == 2, samples[counted]
    # curl's way (`Expect: 100-continue` for bodies over 1 MiB): refused from the head alone
    assert total(samples, counted, route="/v1/messages", status="413") == 1, samples[counted]
    box.server.wait_for_log(r"POST /v1/messages 413 ", wait=5)
    assert total(samples, counted, route="(unmatched)", status="404") == 1, samples[counted]
