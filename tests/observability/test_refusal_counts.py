"""What `codelace_refusals_total` and the dashboard's refusal tally count: requests the box
itself refused before any upstream call (402, 404, 429), not an upstream's own 404 or 429
relayed to the client (those are upstream errors, with a usage row of their own)."""

from __future__ import annotations

from tests.fakes.openai_upstream import Reply
from tests.gateway.conftest import MODEL, BoxFactory
from tests.observability.test_metrics_and_logs import scrape, total

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
