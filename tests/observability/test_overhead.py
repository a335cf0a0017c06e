"""`codelace_overhead_seconds`, the box's own time in a request, counts none of the time spent
waiting on the upstream: not even on an attempt that failed before a retry succeeded."""

from __future__ import annotations

from tests.fakes.openai_upstream import Reply
from tests.gateway.conftest import MODEL, BoxFactory
from tests.observability.test_metrics_and_logs import scrape, total

HELLO = [{"role": "user", "content": "Hello"}]
WAIT = 1.0  # the first attempt's upstream: this long, then it hangs up


def test_a_failed_attempts_wait_is_the_upstreams_not_the_boxs(box_factory: BoxFactory) -> None:
    box = box_factory(keys=("sk-fake-key-0001", "sk-fake-key-0002"))
    _, key = box.new_user("10")
    box.fake.push(Reply(delay_before=WAIT, hang_up=True))  # then the retry: the default reply
    with box.http(key) as client:
        answer = client.post("/v1/chat/completions", json={"model": MODEL, "messages": HELLO})
    assert answer.status_code == 200, answer.text
    assert len(box.fake.requests) == 2  # the hang-up, then the retry that answered
    samples = scrape(box)
    assert total(samples, "codelace_inference_duration_seconds_sum") >= WAIT
    assert total(samples, "codelace_overhead_seconds_count") == 1
    assert total(samples, "codelace_overhead_seconds_sum") < WAIT / 2


STREAM_PIECES = 5
PIECE_WAIT = 0.2  # the upstream's pause between its events


def test_a_streams_own_time_counts_no_wait_for_the_upstreams_events(
    box_factory: BoxFactory,
) -> None:
    """A stream's own time (Claude Code and Codex always stream) is observed too, less every
    wait for the upstream's next event: a slow upstream does not look like a slow box."""
    box = box_factory()
    _, key = box.new_user("10")
    pieces = [f"piece {n} " for n in range(STREAM_PIECES)]
    box.fake.push(Reply(pieces=pieces, piece_delay=PIECE_WAIT))
    body = {"model": MODEL, "messages": HELLO, "stream": True}
    with box.http(key) as client, client.stream("POST", "/v1/chat/completions", json=body) as sse:
        assert sse.status_code == 200
        received = b"".join(sse.iter_bytes())
    assert received.rstrip().endswith(b"data: [DONE]")
    samples = scrape(box)
    waited = (STREAM_PIECES - 1) * PIECE_WAIT
    assert total(samples, "codelace_inference_duration_seconds_sum") >= waited
    assert total(samples, "codelace_overhead_seconds_count") == 1
    assert total(samples, "codelace_overhead_seconds_sum") < waited / 4
