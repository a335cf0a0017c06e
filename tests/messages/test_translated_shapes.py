"""/v1/messages toward an `openai` provider, through the real anthropic SDK: a tool use forced
(`any`, `tool`) without `tools`, and enabled thinking without an integer `budget_tokens` of at
least 1024, are refused as Anthropic refuses them (400 `invalid_request_error`, its
words), before any money is held or the upstream is asked; they were translated anyway (the
tool_choice dropped, a budget guessed). What Anthropic takes still goes through.

/v1/messages/count_tokens of such a model refuses the same shapes the same way (it counted
them: a client's count said fine for a body its call would have refused), but not for the
fields a count does not take (`max_tokens`, `metadata`, the sampling options)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.messages.conftest import NEEDS_SDK, OPENAI_ALIAS, MessagesBox

pytestmark = NEEDS_SDK
HI = [{"role": "user", "content": "Hi"}]
TOOL = {"name": "get", "input_schema": {"type": "object"}}
NO_TOOLS = "tool_choice may only be specified while providing tools."
BUDGET = "thinking.enabled.budget_tokens: "
REFUSED = {
    "any-no-tools": ({"tool_choice": {"type": "any"}}, NO_TOOLS),
    "forced-no-tools": ({"tool_choice": {"type": "tool", "name": "get"}}, NO_TOOLS),
    "choice-empty-tools": ({"tools": [], "tool_choice": {"type": "any"}}, NO_TOOLS),
    "forced-null-tools": ({"tools": None, "tool_choice": {"type": "any"}}, NO_TOOLS),
    "no-budget": ({"thinking": {"type": "enabled"}}, BUDGET + "Field required"),
    "null-budget": ({"thinking": {"type": "enabled", "budget_tokens": None}},
                    BUDGET + "Field required"),
    "text-budget": ({"thinking": {"type": "enabled", "budget_tokens": "2048"}},
                    BUDGET + "Input should be a valid integer"),
    "float-budget": ({"thinking": {"type": "enabled", "budget_tokens": 2048.5}},
                     BUDGET + "Input should be a valid integer"),
    "small-budget": ({"thinking": {"type": "enabled", "budget_tokens": 1023}},
                     BUDGET + "Input should be greater than or equal to 1024"),
    "text-tools": ({"tools": "get"}, "tools: Input should be a valid list"),
    "text-choice": ({"tools": [TOOL], "tool_choice": "any"},
                    "tool_choice: Input should be a valid dictionary"),
    "odd-choice": ({"tools": [TOOL], "tool_choice": {"type": "required"}},
                   "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'"),
    "text-thinking": ({"thinking": "enabled"}, "thinking: Input should be a valid dictionary"),
    "odd-thinking": ({"thinking": {"type": "on"}},
                     "thinking.type: Input should be 'enabled', 'disabled' or 'adaptive'"),
}  # fmt: skip


@pytest.mark.parametrize("case", REFUSED)
def test_a_translated_call_refuses_them_as_anthropic_does(fresh: MessagesBox, case: str) -> None:
    import anthropic

    email, key = fresh.new_key()
    start = fresh.balance_nanos(email)
    fields, words = REFUSED[case]
    with pytest.raises(anthropic.BadRequestError) as caught:
        fresh.client(key).messages.create(model=OPENAI_ALIAS, max_tokens=4096, messages=HI,
                                          **fields)  # fmt: skip
    body: Any = caught.value.body
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error", body
    assert body["error"]["message"] == words, body
    assert fresh.openai_fake.requests == []
    assert fresh.balance_nanos(email) == start


TAKEN = {
    "choice-with-tools": {"tools": [TOOL], "tool_choice": {"type": "any"}},
    "budget-below-cap": {"thinking": {"type": "enabled", "budget_tokens": 4095}},
    "budget-past-cap": {"thinking": {"type": "enabled", "budget_tokens": 8192}},  # interleaved
    "auto-no-tools": {"tool_choice": {"type": "auto"}},  # dropped, as before
    "none-no-tools": {"tools": [], "tool_choice": {"type": "none"}},
    "least-budget": {"thinking": {"type": "enabled", "budget_tokens": 1024}},
    "adaptive": {"thinking": {"type": "adaptive"}},
    "disabled": {"thinking": {"type": "disabled"}},
}


@pytest.mark.parametrize("case", TAKEN)
def test_a_translated_call_takes_what_anthropic_takes(fresh: MessagesBox, case: str) -> None:
    _, key = fresh.new_key()
    message = fresh.client(key).messages.create(model=OPENAI_ALIAS, max_tokens=4096,
                                                messages=HI, **TAKEN[case])  # fmt: skip
    assert message.type == "message" and message.content
    assert len(fresh.openai_fake.requests) == 1


@pytest.mark.parametrize("case", REFUSED)
def test_a_translated_count_refuses_them_as_the_call_does(fresh: MessagesBox, case: str) -> None:
    import anthropic

    _, key = fresh.new_key()
    fields, words = REFUSED[case]
    with pytest.raises(anthropic.BadRequestError) as caught:
        fresh.client(key).messages.count_tokens(model=OPENAI_ALIAS, messages=HI, **fields)
    body: Any = caught.value.body
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error", body
    assert body["error"]["message"] == words, body


def test_a_translated_count_takes_what_anthropic_takes(fresh: MessagesBox) -> None:
    """Each shape a call takes, and what only a call checks: a count has no max_tokens (a
    budget past any), no metadata, no sampling options (sent anyway: not looked at)."""
    client = fresh.client(fresh.new_key()[1])
    others = {"budget-past-any": {"thinking": {"type": "enabled", "budget_tokens": 10**6}},
              "call-fields": {"extra_body": {"metadata": "me", "temperature": 5}}}  # fmt: skip
    for fields in [*TAKEN.values(), *others.values()]:
        counted = client.messages.count_tokens(model=OPENAI_ALIAS, messages=HI, **fields)
        assert counted.input_tokens > 0, fields


# Refused by the translation itself (providers/messages_openai.py), not by its option checks,
# or by the call's own body checks (gateway/messages.py): a count of such a body said fine (it
# counted it) for a body its call refuses.
ODD_IMAGE = {"type": "image", "source": {"type": "bytes", "data": "AAAA"}}
URL_DOCUMENT = {"type": "document", "source": {"type": "url", "url": "https://a.test/b.pdf"}}
TRANSLATION_REFUSES = {
    "tool-role": {"messages": [{"role": "tool", "content": "Hi"}]},
    "developer-role": {"messages": [*HI, {"role": "developer", "content": "Be brief"}]},
    "defined-tool": {"tools": [{"type": "bash_20250124", "name": "bash"}]},
    "odd-image-source": {"messages": [{"role": "user", "content": [ODD_IMAGE]}]},
    "url-document": {"messages": [{"role": "user", "content": [URL_DOCUMENT]}]},
    "text-format": {"output_config": {"format": {"type": "text"}}},
    "schema-less-format": {"output_config": {"format": {"type": "json_schema"}}},
    "number-system": {"system": 5},  # (and these two, by any provider's call: messages.py)
    "thread": {"extra_body": {"thread": {"id": "thr_1"}}},
}


@pytest.mark.parametrize("case", TRANSLATION_REFUSES)
def test_a_translated_count_refuses_what_the_translation_refuses(
    fresh: MessagesBox, case: str
) -> None:
    """The real anthropic SDK's `messages.count_tokens` of a body its call refuses: the same
    400, in the same words, and nothing asked of the upstream."""
    import anthropic

    client = fresh.client(fresh.new_key()[1])
    fields: dict[str, Any] = {"messages": HI, **TRANSLATION_REFUSES[case]}
    with pytest.raises(anthropic.BadRequestError) as called:
        client.messages.create(model=OPENAI_ALIAS, max_tokens=4096, **fields)
    with pytest.raises(anthropic.BadRequestError) as counted:
        client.messages.count_tokens(model=OPENAI_ALIAS, **fields)
    said: Any = counted.value.body
    assert said == called.value.body and said["type"] == "error", (said, called.value.body)
    assert said["error"]["type"] == "invalid_request_error", said
    assert fresh.openai_fake.requests == []
