"""count_tokens' upstream failures are upstream errors like any other route's: counted in
`codelace_upstream_errors_total` by provider and code, logged with the request's id, and
answered in the contract's statuses (a 502 for a malformed count, not a 500)."""

from __future__ import annotations

from collections import deque
from pathlib import Path

import httpx
from aiohttp import web

from tests.fakes.anthropic_upstream import FakeAnthropic, error_body
from tests.observability.test_metrics_and_logs import Samples, total
from tests.support import TLS, ServerProcess, base_sections, free_port, run_cli, write_config

HELLO = [{"role": "user", "content": "Hello"}]
HEADERS = {"anthropic-version": "2023-06-01"}


class ScriptedCounts(FakeAnthropic):
    """An Anthropic upstream whose count_tokens answers the scripted (status, body) in turn."""

    def __init__(self) -> None:
        super().__init__(api_keys=("anth-key",))
        self.counts: deque[tuple[int, object]] = deque()

    async def _count_tokens(self, request: web.Request) -> web.Response:
        await request.read()
        status, body = self.counts.popleft()
        return web.json_response(body, status=status)


def _closed_port() -> int:
    return free_port()  # nothing listens there: connecting is refused


def _scrape(server: ServerProcess) -> Samples:
    from prometheus_client.parser import text_string_to_metric_families

    samples: Samples = {}
    text = httpx.get(f"{server.base_url}/metrics", timeout=10, verify=TLS).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = tuple(sorted(sample.labels.items()))
            samples.setdefault(sample.name, {})[key] = sample.value
    return samples


def test_count_tokens_upstream_failures_are_counted_as_upstream_errors(tmp_path: Path) -> None:
    upstream = ScriptedCounts().start()
    upstream.counts.extend([
        (500, error_body("api_error", "backend down")),
        (400, error_body("invalid_request_error", "messages: bad")),
        (200, {"no": "count"}),
        (404, error_body("not_found_error", "no count_tokens here")),  # estimated: no error
    ])  # fmt: skip
    sections = base_sections(tmp_path, free_port())
    config = write_config(tmp_path / "codelace.toml", sections | {"gateway": {"max_retries": 0}})
    server = ServerProcess(config, int(sections["server"]["port"]))
    gone = f"http://127.0.0.1:{_closed_port()}"
    try:
        for args in (
            ("providers", "add", "anth", "--kind", "anthropic", "--base-url", upstream.base_url,
             "--key", "anth-key"),
            ("providers", "add", "gone", "--kind", "anthropic", "--base-url", gone,
             "--key", "gone-key"),
            ("models", "set", "anth/claude", "--input-per-1m", "1", "--output-per-1m", "2"),
            ("models", "set", "gone/claude", "--input-per-1m", "1", "--output-per-1m", "2"),
            ("users", "create", "a@example.com"),
        ):  # fmt: skip
            assert run_cli(config, *args).returncode == 0, args
        key = run_cli(config, "keys", "create", "a@example.com").stdout.split()[0]
        server.start()
        url = f"{server.base_url}/v1/messages/count_tokens"
        headers = HEADERS | {"x-api-key": key}

        def count(model: str) -> httpx.Response:
            body = {"model": model, "messages": HELLO}
            return httpx.post(url, json=body, headers=headers, timeout=30, verify=TLS)

        answers = [count("anth/claude") for _ in range(4)] + [count("gone/claude")]
        assert [a.status_code for a in answers] == [502, 400, 502, 200, 502], [
            a.text for a in answers
        ]
        assert answers[2].json()["type"] == "error"  # Anthropic's shape, not a bug's 500
        samples = _scrape(server)
        assert total(samples, "codelace_upstream_errors_total", provider="anth") == 3
        assert total(samples, "codelace_upstream_errors_total", provider="anth",
                     code="upstream_400") == 1  # fmt: skip
        assert total(samples, "codelace_upstream_errors_total", provider="gone",
                     code="upstream_unreachable") == 1  # fmt: skip
        assert total(samples, "codelace_refusals_total") == 0
        failed_id = answers[0].headers["x-request-id"]
        server.wait_for_log(rf"upstream error: request {failed_id} model anth/claude .*")
        assert "internal error" not in server.log_text()
    finally:
        server.stop()
        upstream.stop()
