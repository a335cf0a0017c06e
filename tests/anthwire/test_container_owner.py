"""An Anthropic code execution container stays with the box user it was answered to: every user
shares the operator's Anthropic account, so a request naming a container (`container` as its
id, or `{"id": ...}`) another user was given, or one the box never answered, is a 400 in
Anthropic's shape and never reaches Anthropic; the user it was answered to (streamed, in
message_start or message_delta, or whole) names it again."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.anthwire.conftest import MODEL, WireBox
from tests.fakes import anthropic_wire as wire
from tests.fakes.hostile_upstream import SSE, Act, HostileUpstream

pytestmark = pytest.mark.timeout(60)
ARGS = {"model": MODEL, "max_tokens": 100, "messages": [{"role": "user", "content": "run it"}]}


def _answer(container_id: str, where: str) -> Act:
    """An answer naming a container: whole, or streamed with it in message_start or in the
    final message_delta (as Anthropic sends it)."""
    answer = wire.unknown_blocks()
    container = {"id": container_id, "expires_at": "2099-01-01T00:00:00Z"}
    answer.message["container"] = container
    for event in answer.events:
        if event["type"] == "message_delta" and "container" in event["delta"]:
            event["delta"]["container"] = container if where == "delta" else None
    if where == "start":
        answer.events[0]["message"]["container"] = container
    return Act(200, [answer.body()]) if where == "whole" else Act(200, answer.sse(), SSE)


def _call(box: WireBox, key: str, stream: bool, **extra: Any) -> Any:
    client = box.anthropic(key)
    if stream:
        with client.messages.stream(**ARGS, extra_body=extra) as events:  # type: ignore[arg-type]
            return events.get_final_message()
    return client.messages.create(**ARGS, extra_body=extra)  # type: ignore[call-overload]


def _refused(box: WireBox, key: str, named: Any) -> dict[str, Any]:
    import anthropic

    with pytest.raises(anthropic.BadRequestError) as refused:
        _call(box, key, False, container=named)
    body: dict[str, Any] = refused.value.response.json()
    return body


@pytest.mark.parametrize("where", ["whole", "start", "delta"])
def test_a_container_is_only_named_by_the_user_it_was_answered_to(
    box: WireBox, hostile: HostileUpstream, where: str
) -> None:
    """User A's answer names a container; user B naming it (as an id or an object) is refused
    before Anthropic hears of it, and A names it again."""
    container_id = f"container_{uuid.uuid4().hex}"
    _, key_a = box.new_user("5")
    _, key_b = box.new_user("5")
    hostile.push(_answer(container_id, where))
    _call(box, key_a, where != "whole")
    assert len(hostile.seen) == 1
    for named in (container_id, {"id": container_id}):
        body = _refused(box, key_b, named)
        assert body["type"] == "error"
        assert body["error"]["type"] == "invalid_request_error"
        assert "container" in body["error"]["message"] and container_id not in str(body)
    assert len(hostile.seen) == 1
    hostile.push(_answer(container_id, "whole"))
    _call(box, key_a, False, container={"id": container_id})
    assert hostile.seen[-1].body["container"] == {"id": container_id}
    assert box.open_holds() == 0


def test_a_container_the_box_never_answered_is_refused(
    box: WireBox, hostile: HostileUpstream
) -> None:
    """An id no answer of the box named (guessed, or learned elsewhere on the account)."""
    _, key = box.new_user("5")
    assert _refused(box, key, "container_011CPR5CNjB747bTd36fQLFk")["type"] == "error"
    assert _refused(box, key, {"id": 42})["type"] == "error"
    for odd in ("container_\u0000x", "container_" + "x" * 300):  # PostgreSQL: no 500 either
        assert _refused(box, key, odd)["type"] == "error"
    assert hostile.seen == []


def test_a_request_naming_no_container_passes(box: WireBox, hostile: HostileUpstream) -> None:
    """Skills without an id (Anthropic makes a new container), or a null container."""
    _, key = box.new_user("5")
    skills = {"skills": [{"type": "anthropic", "skill_id": "pptx", "version": "latest"}]}
    for container in (skills, None):
        hostile.push(_answer(f"container_{uuid.uuid4().hex}", "whole"))
        _call(box, key, False, container=container)
    assert len(hostile.seen) == 2


def test_another_users_container_is_refused_on_count_tokens_and_in_any_spelling(
    box: WireBox, hostile: HostileUpstream
) -> None:
    """count_tokens (with or without ?beta=true) names a container to Anthropic as /v1/messages
    does; an object with keys beside its id names it as well."""
    container_id = f"container_{uuid.uuid4().hex}"
    _, key_a = box.new_user("5")
    _, key_b = box.new_user("5")
    hostile.push(_answer(container_id, "start"))
    _call(box, key_a, True)
    seen = len(hostile.seen)
    client = box.anthropic(key_b)
    import anthropic

    for named in (container_id, {"id": container_id, "skills": []}, {"id": container_id, "x": 1}):
        for query in ({}, {"beta": "true"}):
            with pytest.raises(anthropic.BadRequestError) as refused:
                client.messages.count_tokens(
                    model=MODEL, messages=ARGS["messages"], extra_body={"container": named},
                    extra_query=query,
                )  # fmt: skip
            assert refused.value.response.json()["error"]["type"] == "invalid_request_error"
        assert _refused(box, key_b, named)["type"] == "error"
    assert len(hostile.seen) == seen
