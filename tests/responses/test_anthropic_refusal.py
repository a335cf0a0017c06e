"""Claude's refusal (`stop_reason: "refusal"`, its streaming classifiers' intervention) on
/v1/responses looks as OpenAI's refusal does: a completed response whose message ends with a
`refusal` content part (streamed as `response.refusal.delta` / `.done`), the words Anthropic's
`stop_details.explanation` gives or a sentence of the box's own. As `response.incomplete` for
`content_filter` Codex retried it five times, each call charged; the real Codex now shows it
once. On /v1/chat/completions the refusal keeps `finish_reason: content_filter` (what the
OpenAI SDK raises ContentFilterFinishReasonError on when it parses) and gains OpenAI's
`message.refusal` with the same words."""

from __future__ import annotations

from pathlib import Path

from tests.fakes.anthropic_upstream import Reply
from tests.responses.conftest import ANTHROPIC_MODEL, ResponsesBox
from tests.responses.test_codex import CODEX, codex_exec

EXPLANATION = "This request was declined because it could enable cyber harm."
DETAILS = {"type": "refusal", "category": "cyber", "explanation": EXPLANATION}


def refused(text: str = "", details: bool = True) -> Reply:
    return Reply(text=text, stop_reason="refusal", stop_details=DETAILS if details else None)


def test_a_refusal_is_a_completed_response_with_a_refusal_part(fresh: ResponsesBox) -> None:
    _, key = fresh.new_key()
    fresh.fake.script(refused("Hello.."))
    answer = fresh.openai(key).responses.create(model=ANTHROPIC_MODEL, input="Hack it.")
    assert answer.status == "completed" and answer.incomplete_details is None
    (message,) = answer.output
    assert message.type == "message" and message.status == "completed"
    assert [part.to_dict() for part in message.content] == [
        {"type": "output_text", "text": "Hello..", "annotations": [], "logprobs": []},
        {"type": "refusal", "refusal": EXPLANATION},
    ]


def test_a_refusal_without_details_gets_the_boxs_words(fresh: ResponsesBox) -> None:
    _, key = fresh.new_key()
    fresh.fake.script(refused(details=False))
    answer = fresh.openai(key).responses.create(model=ANTHROPIC_MODEL, input="Hack it.")
    assert answer.status == "completed"
    (message,) = answer.output
    ((part),) = [p.to_dict() for p in message.content]
    assert part["type"] == "refusal" and "declined" in part["refusal"], part


def test_a_streamed_refusal_is_a_refusal_part(fresh: ResponsesBox) -> None:
    _, key = fresh.new_key()
    fresh.fake.script(refused())
    client = fresh.openai(key)
    with client.responses.stream(model=ANTHROPIC_MODEL, input="Hack it.") as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    assert kinds[-1] == "response.completed", kinds
    assert "response.refusal.done" in kinds and "response.incomplete" not in kinds, kinds
    assert final.status == "completed" and final.incomplete_details is None
    (message,) = final.output
    assert [part.to_dict() for part in message.content] == [
        {"type": "refusal", "refusal": EXPLANATION}
    ]


def test_chat_completions_keep_content_filter_and_give_the_refusal(fresh: ResponsesBox) -> None:
    _, key = fresh.new_key()
    fresh.fake.script(refused("Hello.."))
    answer = fresh.openai(key).chat.completions.create(
        model=ANTHROPIC_MODEL, messages=[{"role": "user", "content": "Hack it."}]
    )
    choice = answer.choices[0]
    assert choice.finish_reason == "content_filter"
    assert (choice.message.content, choice.message.refusal) == ("Hello..", EXPLANATION)
    fresh.fake.script(refused())
    chunks = list(fresh.openai(key).chat.completions.create(
        model=ANTHROPIC_MODEL, messages=[{"role": "user", "content": "Hack it."}], stream=True
    ))  # fmt: skip
    refusal = "".join(c.choices[0].delta.refusal or "" for c in chunks if c.choices)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert refusal == EXPLANATION and finishes[-1] == "content_filter", chunks


def test_codex_shows_a_refusal_once(fresh: ResponsesBox, tmp_path: Path) -> None:
    """The real Codex, headless: one upstream call, one charge, and the turn ends (Codex
    0.171 shows no words of a message with a refusal part, its text included, as it shows
    none of OpenAI's own refusal: "no last agent message")."""
    assert CODEX is not None
    email, key = fresh.new_key()
    fresh.fake.script(*[refused("Sure, here") for _ in range(6)])  # 6: Codex's 5 retries
    done = codex_exec(fresh, tmp_path, key, "Hack it.", model=ANTHROPIC_MODEL)
    calls = fresh.fake.requests
    shown = done.stdout + done.stderr
    assert len(calls) == 1, (len(calls), shown[-3000:])
    assert done.returncode == 0 and "Incomplete response" not in shown, shown[-3000:]
    assert len(fresh.usage_rows(email)) == 1


def test_a_refused_compaction_is_no_compaction(fresh: ResponsesBox) -> None:
    """Codex's compaction refused: completed, its compaction item would seal an empty summary
    and Codex would drop the thread for it; it stays `incomplete` for content_filter (Codex
    keeps its history and says so)."""
    from tests.responses.test_compaction import HISTORY, TOOLS, TRIGGER

    _, key = fresh.new_key()
    fresh.fake.script(refused(), refused())
    client = fresh.openai(key)
    body = {"model": ANTHROPIC_MODEL, "input": [*HISTORY, TRIGGER], "tools": TOOLS}
    answer = client.post("/responses", cast_to=object, body=body)
    assert answer["status"] == "incomplete", answer
    assert answer["incomplete_details"] == {"reason": "content_filter"}
    stream = client.responses.create(**body, stream=True)
    kinds = [event.type for event in stream]
    assert kinds[-1] == "response.incomplete", kinds
