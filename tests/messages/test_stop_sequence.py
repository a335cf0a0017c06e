"""/v1/messages to an `openai` provider: `stop_reason: "stop_sequence"` and the sequence, where
the server says which stop string ended the answer (vLLM's `stop_reason`, SGLang's
`matched_stop`, beside `finish_reason: "stop"`). OpenAI's own "stop" covers both a natural end
and a stop sequence and names neither: that stays end_turn, as LiteLLM maps it. Recorded wire
shapes, through the pure translation."""

from __future__ import annotations

import json
from typing import Any

import pytest

from codelace_box.providers.base import SSEEvent
from codelace_box.providers.messages_openai import MessagesToOpenAI
from codelace_box.providers.openai_stream import OpenAIStreamTranslator

MODEL = "oai/m"
VLLM_EOS = {"stop_reason": None}  # vLLM: null when the model ended on its own (EOS)
CASES = [
    ({"stop_reason": "###"}, "stop_sequence", "###"),  # vLLM: the stop string that matched
    ({"matched_stop": "\nEND"}, "stop_sequence", "\nEND"),  # SGLang
    ({"stop_reason": 128009}, "end_turn", None),  # vLLM: a stop token id (end of turn)
    ({"matched_stop": 151645}, "end_turn", None),  # SGLang: likewise
    (VLLM_EOS, "end_turn", None),
    ({}, "end_turn", None),  # OpenAI, OpenRouter, DeepSeek: no word of which
]


def _completion(extra: dict[str, Any]) -> dict[str, Any]:
    choice = {"index": 0, "message": {"role": "assistant", "content": "1, 2, 3"},
              "finish_reason": "stop", **extra}  # fmt: skip
    return {"id": "c1", "object": "chat.completion", "model": "m", "choices": [choice],
            "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}}  # fmt: skip


@pytest.mark.parametrize(("extra", "reason", "sequence"), CASES)
def test_an_answer_names_the_stop_sequence_the_server_names(
    extra: dict[str, Any], reason: str, sequence: str | None
) -> None:
    message, _ = MessagesToOpenAI().parse_response(_completion(extra), MODEL)
    assert (message["stop_reason"], message["stop_sequence"]) == (reason, sequence)


@pytest.mark.parametrize(("extra", "reason", "sequence"), CASES)
def test_a_stream_names_the_stop_sequence_the_server_names(
    extra: dict[str, Any], reason: str, sequence: str | None
) -> None:
    stream = MessagesToOpenAI().stream_translator(MODEL)
    assert isinstance(stream.inner, OpenAIStreamTranslator)  # type: ignore[attr-defined]
    finish = {"index": 0, "delta": {"content": ""}, "finish_reason": "stop", **extra}
    chunks = [
        {"id": "c1", "choices": [{"index": 0, "delta": {"role": "assistant", "content": "1, 2"},
                                  "finish_reason": None}]},
        {"id": "c1", "choices": [finish]},
        {"id": "c1", "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 4}},
    ]  # fmt: skip
    events = [e for c in chunks for e in stream.feed(SSEEvent(json.dumps(c)))]
    events += stream.feed(SSEEvent("[DONE]")) + stream.finish()
    delta = next(e for e in events if e["type"] == "message_delta")["delta"]
    assert delta == {"stop_reason": reason, "stop_sequence": sequence}


def test_a_stop_string_beside_another_finish_reason_changes_nothing() -> None:
    completion = _completion({"stop_reason": "###"})
    completion["choices"][0]["finish_reason"] = "length"
    message, _ = MessagesToOpenAI().parse_response(completion, MODEL)
    assert (message["stop_reason"], message["stop_sequence"]) == ("max_tokens", None)
