"""Non-ASCII text in an upstream's answer, written as raw UTF-8 (not JSON escapes) and cut
inside its characters: every multi-byte character split between two writes, and between two
SSE events' writes. Whatever the route and whether the box relays the stream natively or
translates it, the client gets the text back whole, character for character: no U+FFFD, no
lost or doubled byte, and the call settles as any other."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fakes.hostile_upstream import (
    JSON_TYPE,
    SSE,
    Act,
    HostileUpstream,
    anthropic_body,
    anthropic_stream,
    chat_body,
    chat_stream,
    responses_body,
    responses_stream,
)
from tests.hostile.conftest import KINDS, ROUTES, HostileBox, events

pytestmark = pytest.mark.timeout(60)
# Latin with diacritics (2 bytes), Arabic written right to left (2), CJK (3), an emoji (4),
# a flag (two 4-byte letters), a combining accent, a zero-width joiner sequence
PIECES = ("Grüße, ", "مرحبا ", "世界 ", "😀", "🇩🇪", " e\u0301", " 👩\u200d💻")
TEXT = "".join(PIECES)


def raw_utf8(write: bytes) -> bytes:
    """An SSE write or a JSON body with its strings as raw UTF-8 rather than \\u escapes."""
    if not write.startswith((b"data: ", b"event: ")):
        return json.dumps(json.loads(write), ensure_ascii=False).encode()
    return b"\n".join(
        b"data: " + json.dumps(json.loads(line[6:]), ensure_ascii=False).encode()
        if line.startswith(b"data: {") else line
        for line in write.split(b"\n")
    )  # fmt: skip


def cut_inside_characters(writes: list[bytes]) -> list[bytes | float]:
    """The writes' bytes cut after the first byte of every multi-byte character, a short
    pause between the pieces so each reaches the box in a read of its own."""
    out: list[bytes | float] = []
    for write in writes:
        start = 0
        for at in range(len(write)):
            if write[at] >= 0xC0:  # the lead byte of a multi-byte character
                out += [write[start : at + 1], 0.002]
                start = at + 1
        out.append(write[start:])
    return out


def got_text(route: str, answer: Any, stream: bool) -> str:
    """The answer's text as the client reads it, in the route's dialect."""
    if not stream:
        body = answer.json()
        if route == "chat":
            return str(body["choices"][0]["message"]["content"])
        if route == "messages":
            return "".join(b["text"] for b in body["content"] if b["type"] == "text")
        return "".join(c["text"] for item in body["output"] for c in item.get("content", []))
    parts = []
    for data in events(answer.text):
        if data == "[DONE]":
            continue
        event = json.loads(data)
        if route == "chat":
            parts += [c["delta"].get("content") or "" for c in event.get("choices", [])]
        elif route == "messages" and event["type"] == "content_block_delta":
            parts.append(event["delta"].get("text", ""))
        elif route == "responses" and event["type"] == "response.output_text.delta":
            parts.append(event["delta"])
    return "".join(parts)


def whole_body(kind: str) -> bytes:
    body = json.loads(chat_body() if kind == "ho" else anthropic_body())
    if kind == "ho":
        body["choices"][0]["message"]["content"] = TEXT
    else:
        body["content"][0]["text"] = TEXT
    return raw_utf8(json.dumps(body).encode())


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("route", ROUTES)
def test_text_cut_inside_its_characters_arrives_whole(
    box: HostileBox, hostile: HostileUpstream, route: str, kind: str, stream: bool
) -> None:
    email, key = box.new_user("10")
    if stream:
        upstream = chat_stream(PIECES) if kind == "ho" else anthropic_stream(PIECES)
        hostile.push(Act(200, cut_inside_characters([raw_utf8(w) for w in upstream]), SSE))
    else:
        hostile.push(Act(200, cut_inside_characters([whole_body(kind)])))
    answer = box.post(key, route, kind, stream=stream)
    assert answer.status_code == 200, answer.text
    assert "\ufffd" not in answer.text
    assert got_text(route, answer, stream) == TEXT, answer.text
    row = box.last_row(email)
    assert row["status"] == "ok" and 0 < row["cost_nanos"] <= row["hold_nanos"], row
    assert box.open_holds() == 0


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
def test_text_cut_inside_its_characters_arrives_whole_from_a_native_responses_upstream(
    box: HostileBox, hostile: HostileUpstream, stream: bool
) -> None:
    email, key = box.new_user("10")
    if stream:
        writes = [raw_utf8(write) for write in responses_stream(PIECES)]
    else:
        body = json.loads(responses_body())
        body["output"][0]["content"][0]["text"] = TEXT
        writes = [raw_utf8(json.dumps(body).encode())]
    hostile.push(Act(200, cut_inside_characters(writes), SSE if stream else JSON_TYPE))
    answer = box.post(key, "responses", "hr", stream=stream)
    assert answer.status_code == 200, answer.text
    assert "\ufffd" not in answer.text
    assert got_text("responses", answer, stream) == TEXT, answer.text
    row = box.last_row(email)
    assert row["status"] == "ok" and 0 < row["cost_nanos"] <= row["hold_nanos"], row
