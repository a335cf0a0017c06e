"""/v1/responses to a provider added with `--responses-api`: the client's body goes to the
upstream's own /v1/responses (model renamed, store false, hosted tools dropped, output capped at
what was held), the answer comes back as the upstream's, relabelled and metered."""

from __future__ import annotations

import json
import time

import pytest

from tests.fakes.openai_upstream import Reply
from tests.messages.conftest import usd_nanos
from tests.responses.conftest import NATIVE_MODEL, OPENAI_KEY, PRICES, ResponsesBox
from tests.support import run_cli


def cost(prompt: int, completion: int) -> int:
    return usd_nanos((prompt, PRICES["in"]), (completion, PRICES["out"]))


def test_create_goes_natively(fresh: ResponsesBox) -> None:
    email, key = fresh.new_key()
    fresh.openai_fake.push(Reply(content="Native answer.", prompt_tokens=321, completion_tokens=9))
    before, _ = fresh.balance_nanos(email)
    raw = fresh.openai(key).responses.with_raw_response.create(
        model=NATIVE_MODEL, instructions="Be brief.", input="Hi", max_output_tokens=200,
        store=True, include=["reasoning.encrypted_content"], tools=[{"type": "web_search"}],
    )  # fmt: skip
    answer = raw.parse()
    sent = fresh.openai_fake.requests[-1]
    assert (sent.path, sent.api_key) == ("/v1/responses", OPENAI_KEY)
    assert sent.body["model"] == "gpt-5.4" and sent.body["store"] is False
    assert sent.body["instructions"] == "Be brief." and sent.body["input"] == "Hi"
    assert sent.body["max_output_tokens"] == 200 and sent.body["tools"] == []
    assert sent.body["include"] == ["reasoning.encrypted_content"]
    assert answer.output_text == "Native answer." and answer.model == NATIVE_MODEL
    expected = cost(321, 9)
    after, held = fresh.balance_nanos(email)
    assert (before - after, held) == (expected, 0)
    assert round(float(raw.headers["x-codelace-cost-usd"]) * 1e9) == expected
    assert answer.usage.model_extra["cost_usd"] == pytest.approx(expected / 1e9)
    assert fresh.usage_rows(email)[-1]["route"] == "/v1/responses"


def test_a_native_stream_is_relayed_and_charged(fresh: ResponsesBox) -> None:
    email, key = fresh.new_key()
    fresh.openai_fake.push(Reply(content="One two three", prompt_tokens=50))
    before, _ = fresh.balance_nanos(email)
    with fresh.openai(key).responses.stream(model=NATIVE_MODEL, input="Count") as stream:
        events = list(stream)
        final = stream.get_final_response()
    sent = fresh.openai_fake.requests[-1].body
    assert sent["stream"] is True and isinstance(sent["max_output_tokens"], int)
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds.count("response.output_text.delta") == 3 and kinds[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert final.output_text == "One two three" and final.model == NATIVE_MODEL
    expected = cost(50, 3)
    assert final.usage.model_extra["cost_usd"] == pytest.approx(expected / 1e9)
    after, held = fresh.balance_nanos(email)
    assert (before - after, held) == (expected, 0)


def test_the_flag_is_stored_and_shown(rbox: ResponsesBox) -> None:
    listed = {p["name"]: p for p in json.loads(rbox.cli("providers", "list", "--json"))}
    assert (listed["native"]["responses_api"], listed["oai"]["responses_api"]) == (True, False)
    refused = run_cli(rbox.config, "providers", "update", "anth", "--responses-api")
    assert refused.returncode != 0 and "openai providers" in refused.stderr
    assert "responses api: native" in rbox.cli("providers", "update", "native", "--responses-api")


@pytest.mark.parametrize("streamed", [False, True])
def test_native_cache_reads_are_billed_at_the_cache_price(
    fresh: ResponsesBox, streamed: bool
) -> None:
    """A native upstream's `input_tokens_details.cached_tokens` are cache reads, billed at the
    model's cache-read price and recorded as such, as chat's `cached_tokens` are."""
    model = f"native/gpt-5.4-cached-{int(streamed)}"
    prices = ("--input-per-1m", "1", "--output-per-1m", "2", "--cache-read-per-1m", "0.1")
    fresh.cli("models", "set", model, "--provider", "native", "--upstream-model", "m", *prices)
    time.sleep(1.5)  # catalog changes apply within a second
    email, key = fresh.new_key()
    fresh.openai_fake.push(
        Reply(content="Cached.", prompt_tokens=2000, cached_tokens=1500, completion_tokens=4)
    )
    before, _ = fresh.balance_nanos(email)
    client = fresh.openai(key)
    if streamed:
        with client.responses.stream(model=model, input="Hi") as stream:
            final = stream.get_final_response()
    else:
        final = client.responses.create(model=model, input="Hi")
    expected = usd_nanos((500, "1"), (1500, "0.1"), (4, "2"))
    after, held = fresh.balance_nanos(email)
    assert (before - after, held) == (expected, 0)
    assert final.usage.input_tokens_details.cached_tokens == 1500
    assert final.usage.model_extra["cost_usd"] == pytest.approx(expected / 1e9)
    assert fresh.usage_rows(email)[-1]["cache_read_tokens"] == 1500


def test_a_native_stream_is_cut_at_the_reserved_output_cap(fresh: ResponsesBox) -> None:
    """An upstream that streams on past `max_output_tokens` is cut where the hold ends, as every
    other route's relay is: the client gets no more output than was reserved, then
    `response.incomplete` (max_output_tokens) with the charge in its usage."""
    email, key = fresh.new_key()
    fresh.openai_fake.push(Reply(pieces=[" w"] * 60, completion_tokens=60, prompt_tokens=30))
    before, _ = fresh.balance_nanos(email)
    with fresh.openai(key).responses.create(
        model=NATIVE_MODEL, input="Count", max_output_tokens=10, stream=True
    ) as stream:
        events = list(stream)
    kinds = [e.type for e in events]
    assert kinds.count("response.output_text.delta") == 10
    last = events[-1]
    assert last.type == "response.incomplete"
    assert last.response.incomplete_details.reason == "max_output_tokens"
    assert last.sequence_number == events[-2].sequence_number + 1
    assert [e.sequence_number for e in events] == list(range(len(events)))
    message = last.response.output[0]  # what was streamed of it, as OpenAI's would carry
    assert message.status == "incomplete"
    assert [part.text for part in message.content] == [" w" * 10]
    after, held = fresh.balance_nanos(email)
    row = fresh.usage_rows(email)[-1]
    assert held == 0 and 10 <= row["output_tokens"] <= 11  # the piece it was cut at counts
    assert before - after == row["cost_nanos"] > 0
    assert last.response.usage.model_extra["cost_usd"] == pytest.approx((before - after) / 1e9)


@pytest.mark.parametrize("stream", [False, True], ids=["answer", "stream"])
def test_a_native_usage_of_zeros_is_charged_an_estimate(fresh: ResponsesBox, stream: bool) -> None:
    """A Responses server that reports `input_tokens: 0, output_tokens: 0` after an answer (as
    LocalAI and LM Studio report zeros where they keep no count) counted nothing: no call has
    an empty input, so, as for a chat usage of zeros, the box charges its own count of the
    answer and the input, never nothing."""
    email, key = fresh.new_key()
    fresh.openai_fake.push(Reply(content="Zero is no count here.", prompt_tokens=0,
                                 completion_tokens=0))  # fmt: skip
    before, _ = fresh.balance_nanos(email)
    client = fresh.openai(key)
    if stream:
        with client.responses.stream(model=NATIVE_MODEL, input="Count this") as events:
            text = events.get_final_response().output_text
    else:
        text = client.responses.create(model=NATIVE_MODEL, input="Count this").output_text
    assert text == "Zero is no count here."
    row = fresh.usage_rows(email)[-1]
    assert row["estimated"] == 1 and row["input_tokens"] > 0 and row["output_tokens"] > 0
    assert row["cost_nanos"] == cost(row["input_tokens"], row["output_tokens"]) > 0
    assert fresh.balance_nanos(email) == (before - row["cost_nanos"], 0)


@pytest.mark.parametrize("stream", [False, True], ids=["answer", "stream"])
def test_a_native_input_count_of_zero_is_charged_the_box_count(
    fresh: ResponsesBox, stream: bool
) -> None:
    """Ollama's /v1/responses reports `input_tokens: 0` for a prompt it had cached (its prompt
    count, ollama/ollama#5370): the same long input sent again would cost only its output. No
    call has an empty input: the box charges its own count of it."""
    email, key = fresh.new_key()
    fresh.openai_fake.push(Reply(content="Cached prompt.", prompt_tokens=0, completion_tokens=7))
    before, _ = fresh.balance_nanos(email)
    client = fresh.openai(key)
    if stream:
        with client.responses.stream(model=NATIVE_MODEL, input="Count this " * 50) as events:
            shown = events.get_final_response().usage
    else:
        shown = client.responses.create(model=NATIVE_MODEL, input="Count this " * 50).usage
    row = fresh.usage_rows(email)[-1]
    assert row["estimated"] == 1 and row["input_tokens"] >= 100 and row["output_tokens"] == 7
    assert (shown.input_tokens, shown.output_tokens) == (row["input_tokens"], 7)
    assert row["cost_nanos"] == cost(row["input_tokens"], 7)
    assert fresh.balance_nanos(email) == (before - row["cost_nanos"], 0)
