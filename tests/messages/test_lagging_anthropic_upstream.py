"""An Anthropic-compatible upstream that lags the API (a proxy, an older Bedrock-style gateway)
refuses structured outputs' `output_config` (or the older `output_format`) with a 400 naming the
field as unknown. The box asks once more in the form the upstream takes: the older top-level
`output_format` under its beta, or the current `output_config.format`; when it takes neither,
the schema goes into the system prompt as an instruction (the answer is still asked for in the
schema, only not enforced), and the effort `output_config` carried is left out. The provider is
not sent the refused field again for a while. A refusal of what is inside the field (a schema
feature) is the client's 400, not retried. One call, one hold, charged once."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from itertools import count
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.anthropic_upstream import LEGACY_FORMAT_BETA, FakeAnthropic, Reply
from tests.messages.conftest import NEEDS_SDK, PROVIDER_KEY, MessagesBox
from tests.support import TLS, ServerProcess, base_sections, free_port, write_config

pytestmark = [pytest.mark.timeout(60), NEEDS_SDK]
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "celsius": {"type": "integer"}},
    "required": ["city", "celsius"],
    "additionalProperties": False,
}
ASK = [{"role": "user", "content": "The weather in Paris?"}]
ANSWER = '{"city": "Paris", "celsius": 21}'
_providers = count(1)


@pytest.fixture(scope="module")
def lagging(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MessagesBox]:
    fake = FakeAnthropic(api_keys=(PROVIDER_KEY,)).start()
    folder = tmp_path_factory.mktemp("lagging")
    sections = base_sections(folder, free_port())
    config = write_config(folder / "codelace.toml", sections)
    server = ServerProcess(config, int(sections["server"]["port"]))
    box = MessagesBox(server, config, Path(sections["database"]["path"]), fake, None)  # type: ignore[arg-type]
    box.cli("migrate")
    server.start()
    yield box
    server.stop()
    fake.stop()


@pytest.fixture
def model(lagging: MessagesBox) -> str:
    """A provider of its own per test (what the box remembers of one is per provider)."""
    lagging.fake.reset()
    name = f"lag{next(_providers)}"
    lagging.cli("providers", "add", name, "--kind", "anthropic", "--base-url",
                lagging.fake.base_url, "--key", PROVIDER_KEY)  # fmt: skip
    lagging.cli("models", "set", f"{name}/claude-sonnet-4-5", "--input-per-1m", "3",
                "--output-per-1m", "15")  # fmt: skip
    return f"{name}/claude-sonnet-4-5"


def _post(box: MessagesBox, key: str, path: str, body: dict[str, Any]) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}", "anthropic-version": "2023-06-01"}
    for _ in range(40):  # the catalog change reaches the server within a second
        answer = httpx.post(
            f"{box.server.base_url}{path}", json=body, headers=headers, timeout=30, verify=TLS
        )
        if answer.status_code != 404:
            return answer
        time.sleep(0.05)
    return answer


def _text_of(answer: httpx.Response, streamed: bool) -> str:
    """The text of a /v1/messages answer, streamed or not."""
    if not streamed:
        return "".join(b["text"] for b in answer.json()["content"] if b["type"] == "text")
    data = [json.loads(line[6:]) for line in answer.text.splitlines() if line.startswith("data: ")]
    deltas = [d["delta"] for d in data if d["type"] == "content_block_delta"]
    return "".join(d.get("text", "") for d in deltas)


def _chat(box: MessagesBox, key: str, model: str) -> httpx.Response:
    response_format = {"type": "json_schema", "json_schema": {"name": "w", "schema": SCHEMA}}
    body = {"model": model, "max_tokens": 200, "messages": ASK, "response_format": response_format}
    return _post(box, key, "/v1/chat/completions", body)


def test_chat_structured_output_to_an_upstream_taking_only_output_format(
    lagging: MessagesBox, model: str
) -> None:
    email, key = lagging.new_key()
    lagging.fake.refused_fields.add("output_config")
    lagging.fake.legacy_output_format = True
    lagging.fake.script(Reply(text=ANSWER), Reply(text=ANSWER))
    answer = _chat(lagging, key, model)
    assert answer.status_code == 200, answer.text
    assert json.loads(answer.json()["choices"][0]["message"]["content"]) == json.loads(ANSWER)
    first, second = (r.body for r in lagging.fake.requests)
    assert "output_config" in first and "output_config" not in second
    assert second["output_format"]["type"] == "json_schema"
    assert second["output_format"]["schema"]["required"] == ["city", "celsius"]
    assert LEGACY_FORMAT_BETA in lagging.fake.requests[1].headers.get("anthropic-beta", "")
    [row] = lagging.usage_rows(email)
    assert row["status"] == "ok" and row["cost_nanos"] > 0
    sent = len(lagging.fake.requests)
    assert _chat(lagging, key, model).status_code == 200
    assert len(lagging.fake.requests) == sent + 1, "the refused field is not sent again"
    assert "output_format" in lagging.fake.requests[-1].body


@pytest.mark.parametrize("streamed", [False, True])
def test_messages_structured_output_to_an_upstream_taking_neither_form(
    lagging: MessagesBox, model: str, streamed: bool
) -> None:
    email, key = lagging.new_key()
    lagging.fake.refused_fields.update({"output_config", "output_format"})
    lagging.fake.script(*[Reply(text=ANSWER)] * 3)
    body = {"model": model, "max_tokens": 200, "messages": ASK, "stream": streamed,
            "system": "Be brief.",
            "output_config": {"format": {"type": "json_schema", "schema": SCHEMA},
                              "effort": "low"}}  # fmt: skip
    answer = _post(lagging, key, "/v1/messages", body)
    assert answer.status_code == 200, answer.text
    assert _text_of(answer, streamed) == ANSWER
    bodies = [r.body for r in lagging.fake.requests]
    assert len(bodies) == 3
    assert "output_config" in bodies[0] and "output_format" in bodies[1]
    last = bodies[2]
    assert "output_config" not in last and "output_format" not in last
    system = json.dumps(last["system"])
    assert "Be brief." in system and "JSON Schema" in system and '\\"celsius\\"' in system
    [row] = lagging.usage_rows(email)
    assert row["status"] == "ok" and row["cost_nanos"] > 0


def test_a_client_sending_the_older_output_format_to_an_upstream_that_refuses_it(
    lagging: MessagesBox, model: str
) -> None:
    _, key = lagging.new_key()
    lagging.fake.refused_fields.add("output_format")
    body = {"model": model, "max_tokens": 200, "messages": ASK,
            "output_format": {"type": "json_schema", "schema": SCHEMA}}  # fmt: skip
    answer = _post(lagging, key, "/v1/messages", body)
    assert answer.status_code == 200, answer.text
    last = lagging.fake.requests[-1].body
    assert "output_format" not in last
    assert last["output_config"]["format"]["schema"] == SCHEMA


def test_a_refusal_of_what_the_field_holds_is_relayed_not_retried(
    lagging: MessagesBox, model: str
) -> None:
    email, key = lagging.new_key()
    schema = {**SCHEMA, "properties": {"celsius": {"type": "integer", "minimum": -90}}}
    body = {"model": model, "max_tokens": 200, "messages": ASK,
            "output_config": {"format": {"type": "json_schema", "schema": schema}}}  # fmt: skip
    answer = _post(lagging, key, "/v1/messages", body)
    assert answer.status_code == 400, answer.text
    assert "property 'minimum' is not supported" in answer.json()["error"]["message"]
    assert len(lagging.fake.requests) == 1
    assert all(r["cost_nanos"] == 0 for r in lagging.usage_rows(email))


def test_responses_text_format_to_an_upstream_taking_only_output_format(
    lagging: MessagesBox, model: str
) -> None:
    email, key = lagging.new_key()
    lagging.fake.refused_fields.add("output_config")
    lagging.fake.legacy_output_format = True
    lagging.fake.script(Reply(text=ANSWER), Reply(text=ANSWER))
    body = {"model": model, "input": "The weather in Paris?", "max_output_tokens": 200,
            "text": {"format": {"type": "json_schema", "name": "w", "schema": SCHEMA}}}  # fmt: skip
    answer = _post(lagging, key, "/v1/responses", body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["output"][-1]["content"][0]["text"] == ANSWER
    assert "output_format" in lagging.fake.requests[-1].body
    [row] = lagging.usage_rows(email)
    assert row["status"] == "ok" and row["cost_nanos"] > 0


def test_a_clients_own_field_named_like_output_config_leaves_it_to_everyone(
    lagging: MessagesBox, model: str
) -> None:
    """A field of the client's own whose name holds `output_config` (refused as unknown, and
    again once the box asked without output_config) is the client's 400; the provider is not
    taken to refuse output_config, whose structured outputs its other users keep."""
    _, attacker = lagging.new_key()
    poisoned = {"model": model, "max_tokens": 50, "messages": ASK, "output_config-x": {}}
    refused = _post(lagging, attacker, "/v1/messages", poisoned)
    assert refused.status_code == 400 and "output_config-x" in refused.text
    _, key = lagging.new_key()
    lagging.fake.script(Reply(text=ANSWER))
    body = {"model": model, "max_tokens": 200, "messages": ASK,
            "output_config": {"format": {"type": "json_schema", "schema": SCHEMA}}}  # fmt: skip
    answer = _post(lagging, key, "/v1/messages", body)
    assert answer.status_code == 200, answer.text
    assert lagging.fake.requests[-1].body["output_config"] == body["output_config"]
