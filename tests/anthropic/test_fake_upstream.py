"""The fake Anthropic server itself: as strict as the real API, and answering in its formats."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from codelace_box.providers import adapter_for
from tests.anthropic.wire import load_json, parse_sse
from tests.fakes.anthropic_upstream import FakeAnthropic, Reply, ToolUse
from tests.fakes.anthropic_validation import request_problem
from tests.support import TLS

KEY = "sk-ant-test-key"
HEADERS = {"x-api-key": KEY, "anthropic-version": "2023-06-01", "content-type": "application/json"}
HELLO = {
    "model": "claude-opus-4-6",
    "max_tokens": 64,
    "messages": [{"role": "user", "content": "Hi"}],
}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAnthropic]:
    server = FakeAnthropic(api_keys=(KEY,)).start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _clean(fake: FakeAnthropic) -> None:
    fake.reset()


def post(fake: FakeAnthropic, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(
        f"{fake.base_url}/v1/messages", json=body, headers=headers or HEADERS, verify=TLS
    )


def _turns(*roles: str) -> list[dict[str, Any]]:
    return [{"role": r, "content": "x"} for r in roles]


USE = {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}
RESULT = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}
TOOLS = [{"name": "f", "input_schema": {"type": "object"}}]
INVALID = [
    ({"max_tokens": 5, "messages": HELLO["messages"]}, "model: Field required"),
    ({**HELLO, "max_tokens": None}, "max_tokens"),
    ({k: v for k, v in HELLO.items() if k != "max_tokens"}, "max_tokens: Field required"),
    ({**HELLO, "n": 2}, "n: Extra inputs are not permitted"),
    ({**HELLO, "messages": _turns("assistant", "user")}, "starting with 'user'"),
    ({**HELLO, "messages": _turns("assistant", "assistant", "user")}, "starting with 'user'"),
    ({**HELLO, "messages": [{"role": "system", "content": "x"}]}, "role"),
    ({**HELLO, "messages": [{"role": "user", "content": ""}]}, "non-empty"),
    (
        {**HELLO, "messages": [{"role": "user", "content": [{"type": "text", "text": ""}]}]},
        "non-empty",
    ),
    ({**HELLO, "messages": [{"role": "user", "content": [RESULT]}]}, "unexpected `tool_use_id`"),
    (  # a tool_use id again in a later turn
        {
            **HELLO,
            "messages": [
                {"role": "user", "content": "Hi"},
                *[{"role": "assistant", "content": [USE]}, {"role": "user", "content": [RESULT]}],
                *[{"role": "assistant", "content": [USE]}, {"role": "user", "content": [RESULT]}],
            ],
        },
        "messages.3.content.0: `tool_use` ids must be unique",
    ),
    ({**HELLO, "messages": [{"role": "user", "content": " \n"}]}, "non-whitespace"),
    (
        {
            **HELLO,
            "messages": [
                *_turns("user"),
                {"role": "assistant", "content": [{"type": "text", "text": "\n\n"}, USE]},
            ],
        },
        "non-whitespace",
    ),
    ({**HELLO, "system": [{"type": "text", "text": "  "}]}, "non-whitespace"),
    (
        {
            **HELLO,
            "messages": [*_turns("user"), {"role": "assistant", "content": "The answer is "}],
        },
        "trailing whitespace",
    ),
    (
        {
            **HELLO,
            "tools": TOOLS,
            "messages": [
                *_turns("user"),
                {"role": "assistant", "content": [USE]},
                {"role": "user", "content": [{"type": "text", "text": "t"}, RESULT]},
            ],
        },
        "must come first",
    ),
    (
        {
            **HELLO,
            "tools": TOOLS,
            "messages": [*_turns("user"), {"role": "assistant", "content": [USE]}, *_turns("user")],
        },
        "without `tool_result`",
    ),
    (
        {**HELLO, "messages": [*_turns("user"), {"role": "assistant", "content": [RESULT]}]},
        "not allowed in assistant",
    ),
    (
        {
            **HELLO,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/bmp", "data": "Qk0="},
                        }
                    ],
                }
            ],
        },
        "media_type",
    ),
    ({**HELLO, "system": [{"type": "image"}]}, "system.0"),
    ({**HELLO, "temperature": 1.5}, "temperature"),
    (
        {
            **HELLO,
            "model": "claude-opus-4-7",
            "max_tokens": 4000,
            "thinking": {"type": "enabled", "budget_tokens": 2000},
        },
        '"thinking.type.adaptive"',
    ),
    (
        {
            **HELLO,
            "messages": [
                *_turns("user"),
                {
                    "role": "assistant",
                    "content": [
                        {"type": "text", "text": "t"},
                        {"type": "thinking", "thinking": "x", "signature": "s"},
                    ],
                },
                *_turns("user"),
            ],
        },
        "the first block must be `thinking`",
    ),
    (
        {
            **HELLO,
            "output_config": {
                "format": {
                    "type": "json_schema",
                    "schema": {
                        "type": "object",
                        "properties": {"n": {"type": "integer", "minimum": 1}},
                    },
                }
            },
        },
        "property 'minimum' is not supported",
    ),
    (
        {
            **HELLO,
            "tools": [
                {
                    **TOOLS[0],
                    "strict": True,
                    "input_schema": {
                        "type": "object",
                        "properties": {"xs": {"type": "array", "minItems": 3}},
                    },
                }
            ],
        },
        "'minItems' values other than 0 or 1",
    ),
    ({**HELLO, "temperature": 0.5, "top_p": 0.9}, "only one"),
    ({**HELLO, "metadata": {"user_id": "bob@example.com"}}, "email address"),
    ({**HELLO, "metadata": {"user_id": "+44 20 7946 0958"}}, "phone number"),
    ({**HELLO, "metadata": {"user_id": "u" * 257}}, "256"),
    ({**HELLO, "stop_sequences": ["END", "\n"]}, "non-whitespace"),
    ({**HELLO, "tool_choice": {"type": "auto"}}, "while providing tools"),
    ({**HELLO, "tools": [{"name": "f", "parameters": {}}]}, "Extra inputs"),
    (
        {**HELLO, "max_tokens": 2000, "thinking": {"type": "enabled", "budget_tokens": 2000}},
        "greater than",
    ),
    (
        {
            **HELLO,
            "max_tokens": 4000,
            "temperature": 0.5,
            "thinking": {"type": "enabled", "budget_tokens": 2000},
        },
        "temperature",
    ),
]


@pytest.mark.parametrize(("body", "words"), INVALID)
def test_validation_is_strict(body: dict[str, Any], words: str) -> None:
    problem = request_problem(body)
    assert problem is not None and words in problem


def test_documented_requests_are_valid() -> None:
    assert request_problem(load_json("request_tools.anthropic.json")) is None
    assert request_problem({**HELLO, "system": "Be brief.", "stop_sequences": ["END"]}) is None
    claude_codes = '{"device_id":"%s","session_id":"e9781ca7-7000-4090-9105-f1a9ddb85e6c"}'
    user_id = claude_codes % ("0a1b" * 16)  # a session uuid with three groups of digits
    assert request_problem({**HELLO, "metadata": {"user_id": user_id}}) is None
    adaptive = {"thinking": {"type": "adaptive"}, "output_config": {"effort": "high"}}
    assert request_problem({**HELLO, "model": "claude-opus-4-7", **adaptive}) is None
    blank_beside_text = [{"type": "text", "text": " "}, {"type": "text", "text": "real"}]
    assert (
        request_problem({**HELLO, "messages": [{"role": "user", "content": blank_beside_text}]})
        is None
    )


def test_invalid_body_gets_anthropic_400(fake: FakeAnthropic) -> None:
    response = post(fake, {**HELLO, "messages": _turns("assistant", "user")})
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"
    assert "alternate" in body["error"]["message"]


def test_consecutive_turns_of_one_role_are_one_turn() -> None:
    """Anthropic combines consecutive user (or assistant) turns into one; the fake refused two
    user turns in a row, stricter than the API it stands for."""
    assert request_problem({**HELLO, "messages": _turns("user", "user")}) is None
    assert request_problem({**HELLO, "messages": _turns("user", "assistant", "assistant")}) is None
    answered = [*_turns("user"), {"role": "assistant", "content": [USE]},
                {"role": "user", "content": [RESULT]}, *_turns("user")]  # fmt: skip
    assert request_problem({**HELLO, "tools": TOOLS, "messages": answered}) is None
    late = [*_turns("user"), {"role": "assistant", "content": [USE]}, *_turns("user"),
            {"role": "user", "content": [RESULT]}]  # fmt: skip
    problem = request_problem({**HELLO, "tools": TOOLS, "messages": late})
    assert problem is not None and "must come first" in problem


TASK_BUDGETS = "task-budgets-2026-03-13"


def test_a_task_budget_is_taken_under_its_beta() -> None:
    """Claude Code sends output_config.task_budget under the task-budgets beta (Anthropic's
    documented {type: "tokens", total, remaining}); the fake refused it as an unknown field."""
    budget = {"type": "tokens", "total": 64000}
    body = {**HELLO, "model": "claude-opus-4-7", "output_config": {"task_budget": budget}}
    assert request_problem(body, TASK_BUDGETS) is None
    carried = {"effort": "high", "task_budget": {**budget, "remaining": 1000}}
    assert request_problem({**body, "output_config": carried}, f"x-1, {TASK_BUDGETS}") is None
    without = request_problem(body)
    assert without is not None and "task_budget: Extra inputs" in without
    for bad in ({"total": 5}, {**budget, "total": "5"}, {**budget, "cap": 1}, [budget]):
        wrong = request_problem({**body, "output_config": {"task_budget": bad}}, TASK_BUDGETS)
        assert wrong is not None and "task_budget" in wrong, bad


def test_headers_are_checked(fake: FakeAnthropic) -> None:
    wrong_key = post(fake, HELLO, {**HEADERS, "x-api-key": "sk-ant-wrong"})
    assert wrong_key.status_code == 401
    assert wrong_key.json()["error"] == {
        "type": "authentication_error",
        "message": "invalid x-api-key",
    }
    no_version = post(fake, HELLO, {k: v for k, v in HEADERS.items() if k != "anthropic-version"})
    assert no_version.status_code == 400
    assert "anthropic-version" in no_version.json()["error"]["message"]


def test_scripted_message_and_error(fake: FakeAnthropic) -> None:
    fake.script(
        Reply.error(529, "overloaded_error", "Overloaded"), Reply(text="Hi there", output_tokens=3)
    )
    assert post(fake, HELLO).status_code == 529
    message = post(fake, HELLO).json()
    assert message["type"] == "message"
    assert message["model"] == "claude-opus-4-6"
    assert message["content"] == [{"type": "text", "text": "Hi there"}]
    assert message["stop_reason"] == "end_turn"
    assert message["usage"]["output_tokens"] == 3
    assert len(fake.requests) == 2 and fake.requests[1].body == HELLO


def test_stream_is_framed_like_anthropic_and_translates_back(fake: FakeAnthropic) -> None:
    uses = [ToolUse("toolu_a", "f", {"x": 1}), ToolUse("toolu_b", "g", {"y": "two"})]
    fake.script(Reply(text="Let me see.", tool_uses=uses, input_tokens=40, output_tokens=22))
    response = post(fake, {**HELLO, "stream": True})
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.text.startswith("event: message_start\ndata: {")
    events = parse_sse(response.text)
    kinds = [e.event for e in events]
    assert kinds[:3] == ["message_start", "content_block_start", "ping"]
    assert kinds[-2:] == ["message_delta", "message_stop"]
    assert all(json.loads(e.data)["type"] == e.event for e in events)
    translator = adapter_for("anthropic").stream_translator("m")
    chunks = [c for e in events for c in translator.feed(e)]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert text == "Let me see."
    names = [
        p["function"]["name"]
        for c in chunks
        for p in c["choices"][0]["delta"].get("tool_calls", [])
        if "id" in p
    ]
    assert names == ["f", "g"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert translator.usage is not None and translator.usage.output_tokens == 22


def test_stream_error_event(fake: FakeAnthropic) -> None:
    fake.script(
        Reply(
            text="abcdefgh",
            error_after_deltas=1,
            error_type="overloaded_error",
            error_message="Overloaded",
        )
    )
    events = parse_sse(post(fake, {**HELLO, "stream": True}).text)
    assert [e.event for e in events][-2:] == ["content_block_delta", "error"]
    assert json.loads(events[-1].data) == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }


# Per-message effort (platform.claude.com/docs/build-with-claude/effort-per-message): an
# effort-only system message, under the documented beta or the one Claude Code sends.
EFFORT_TURN = {"role": "system", "content": [], "output_config": {"effort": "low"}}
PER_MESSAGE = {**HELLO, "messages": [*_turns("user", "assistant"), EFFORT_TURN, *_turns("user")]}


@pytest.mark.parametrize(
    "beta",
    [
        "mid-conversation-output-config-2026-07-01",
        "claude-code-20250219,per-turn-control-2026-07-01",
    ],
)
def test_a_system_message_takes_output_config_under_its_beta(beta: str) -> None:
    assert request_problem(PER_MESSAGE, beta) is None
    with_text = {**EFFORT_TURN, "content": "Be brief.", "output_config": {}}
    assert request_problem({**PER_MESSAGE, "messages": [*_turns("user"), with_text]}, beta) is None


def _with_turn(turn: dict[str, Any]) -> dict[str, Any]:
    return {**PER_MESSAGE, "messages": [*_turns("user", "assistant"), turn, *_turns("user")]}


@pytest.mark.parametrize(
    ("body", "beta", "words"),
    [
        (PER_MESSAGE, "", "messages.2.output_config: Extra inputs are not permitted"),
        (PER_MESSAGE, "context-management-2025-06-27", "messages.2.output_config: Extra inputs"),
        (_with_turn({**EFFORT_TURN, "role": "user", "content": "x"}), "per-turn-control-2026-07-01",
         "messages.2.output_config: Extra inputs are not permitted"),
        (_with_turn({**EFFORT_TURN, "output_config": {}}), "per-turn-control-2026-07-01",
         "non-empty content"),
        (_with_turn({**EFFORT_TURN, "output_config": {"format": {"type": "json_schema"}}}),
         "per-turn-control-2026-07-01", "messages.2.output_config.format: Extra inputs"),
        (_with_turn({**EFFORT_TURN, "output_config": {"effort": "huge"}}),
         "per-turn-control-2026-07-01", "messages.2.output_config.effort"),
        (_with_turn({**EFFORT_TURN, "name": "x"}), "per-turn-control-2026-07-01",
         "messages.2.name: Extra inputs are not permitted"),
    ],
)  # fmt: skip
def test_a_message_field_beyond_role_and_content_is_refused(
    body: dict[str, Any], beta: str, words: str
) -> None:
    problem = request_problem(body, beta)
    assert problem is not None and words in problem, problem


def test_the_fake_reads_the_beta_header(fake: FakeAnthropic) -> None:
    assert post(fake, PER_MESSAGE).status_code == 400
    answer = post(fake, PER_MESSAGE, {**HEADERS, "anthropic-beta": "per-turn-control-2026-07-01"})
    assert answer.status_code == 200, answer.text


# Tool search (client-side, as Claude Code does it): deferred tools, and tool results that load
# them by reference.
PLACEHOLDER = {"name": "Placeholder", "input_schema": {"type": "object"}, "defer_loading": True}
SEARCH = {"name": "ToolSearch", "input_schema": {"type": "object"}}


def test_deferred_tools_and_tool_references_are_valid() -> None:
    assert request_problem({**HELLO, "tools": [SEARCH, PLACEHOLDER]}) is None
    use = {**USE, "name": "ToolSearch"}
    loaded = {**RESULT, "content": [{"type": "tool_reference", "tool_name": "Placeholder"}]}
    turns = [*_turns("user"), {"role": "assistant", "content": [use]},
             {"role": "user", "content": [loaded]}]  # fmt: skip
    assert request_problem({**HELLO, "tools": [SEARCH, PLACEHOLDER], "messages": turns}) is None


@pytest.mark.parametrize(
    ("tools", "words"),
    [
        ([SEARCH, {**PLACEHOLDER, "defer_loading": "yes"}], "tools.1.defer_loading"),
        ([PLACEHOLDER], "At least one tool must be non-deferred"),
        ([SEARCH, {**PLACEHOLDER, "lazy": True}], "tools.1.lazy: Extra inputs are not permitted"),
    ],
)
def test_tools_are_checked(tools: list[dict[str, Any]], words: str) -> None:
    problem = request_problem({**HELLO, "tools": tools})
    assert problem is not None and words in problem, problem
