"""A seeded random load against a real box and a scripted upstream (issue 20): mixed requests
(streamed or not, include_usage or not, media parts), streams cut by the client at random
points, upstream quirks (usage missing, usage above the reservation, hidden reasoning tokens,
a stream that never stops). For every request the charge stays within its hold and equals the
provider's count at the model's prices whenever that is within the hold; at the end each
ledger equals its balance and nothing is held."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest

from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.gateway.conftest import IN_PRICE, MODEL, NANOS, OUT_PRICE, Box, BoxFactory, cost_nanos

pytestmark = pytest.mark.timeout(300)
URL = "/v1/chat/completions"
REQUESTS_PER_SEED = 24
CREDIT_USD = "20"
MEDIA: dict[str, tuple[dict[str, Any], int]] = {  # a content part, and what the provider counts
    "image-url": ({"type": "image_url", "image_url": {"url": "https://x.test/cat.png"}}, 1_500),
    "image-inline": (
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 400}},
        85,
    ),
    "pdf-url": ({"type": "file", "file": {"file_data": "https://x.test/a.pdf"}}, 60_000),
    "audio": ({"type": "input_audio", "input_audio": {"data": "UklGR" * 40, "format": "wav"}}, 900),
}
QUIRKS = ("plain", "no-usage", "above-hold", "reasoning", "cjk", "endless")


@dataclass
class Case:
    """One random request, its scripted reply, and how the client treats the answer."""

    tag: str
    body: dict[str, Any]
    reply: Reply
    quirk: str
    leave_after: int | None  # stream: close after this many data events

    def reported_cost(self) -> int | None:
        """The provider's count at the model's prices; None when it never reports one."""
        if self.quirk in ("no-usage", "endless"):
            return None
        completion = self.reply.completion_tokens
        assert completion is not None
        return cost_nanos(self.reply.prompt_tokens, completion, IN_PRICE, OUT_PRICE)


def make_case(rng: random.Random, index: int, seed: int) -> Case:
    stream = rng.random() < 0.7
    quirk = rng.choice(QUIRKS if stream else QUIRKS[:-1])
    cap = rng.randint(20, 400)
    content: list[dict[str, Any]] = [{"type": "text", "text": "Tell me something."}]
    prompt = 40
    for name in rng.sample(sorted(MEDIA), rng.randint(0, 2)):
        part, tokens = MEDIA[name]
        content.append(part)
        prompt += tokens
    tag = f"s{seed}-r{index}"
    body: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": content}],
                            "max_tokens": cap, "user": tag, "stream": stream}  # fmt: skip
    if stream and rng.random() < 0.5:
        body["stream_options"] = {"include_usage": True}
    words = rng.randint(1, min(cap, 40))
    reply = Reply(content=" ".join(["word"] * words), prompt_tokens=prompt,
                  completion_tokens=words, usage=quirk != "no-usage")  # fmt: skip
    if quirk == "above-hold":
        reply.completion_tokens = cap * rng.randint(2, 50)
    elif quirk == "reasoning":
        reply.reasoning_tokens = rng.randint(1, cap - words) if cap > words else 0
        reply.completion_tokens = words + reply.reasoning_tokens
        reply.tail_delay = 0.3
    elif quirk == "cjk":
        reply.pieces = ["数据" * rng.randint(1, 3) for _ in range(words)]
    elif quirk == "endless":
        reply.endless = rng.choice([" x", "中", " tokens"])
    leave = rng.randint(1, words + 2) if stream and rng.random() < 0.4 else None
    return Case(tag, body, reply, quirk, leave)


def run_case(box: Box, key: str, case: Case) -> str:
    """Send one request as its client would; returns the request id."""
    with box.http(key) as http, http.stream("POST", URL, json=case.body) as response:
        assert response.status_code == 200, (case.tag, response.read())
        request_id = response.headers["x-request-id"]
        if case.leave_after is None:
            response.read()
            return request_id
        events = 0
        for line in response.iter_lines():
            events += line.startswith("data: ")
            if events >= case.leave_after:
                break
    return request_id


def check_case(box: Box, case: Case, request_id: str) -> None:
    row = box.settled_row(request_id, wait=30)
    hold, charged = int(row["hold_nanos"]), int(row["cost_nanos"])
    where = f"{case.tag} ({case.quirk}, leave_after={case.leave_after}): {row}"
    assert hold > 0 and 0 <= charged <= hold, where
    reported = case.reported_cost()
    if reported is not None:
        assert charged == min(reported, hold), where
        if reported > hold:
            assert (
                f"request {request_id}: the provider reported {reported}" in box.server.log_text()
            ), where


@pytest.fixture(scope="module")
def box(box_factory: BoxFactory) -> Box:
    """The box, its provider allowed audio input (billed at audio prices: refused otherwise)."""
    box = box_factory()
    box.cli("providers", "update", "fake", "--allow-field", "audio")
    box.until_reloaded()
    return box


@pytest.mark.parametrize("seed", [20, 2026, 7919])
def test_random_load_never_charges_beyond_the_hold(box: Box, fake: FakeOpenAI, seed: int) -> None:
    rng = random.Random(seed)
    email, key = box.new_user(CREDIT_USD)
    cases = [make_case(rng, i, seed) for i in range(REQUESTS_PER_SEED)]
    fake.tagged.update({case.tag: case.reply for case in cases})
    with ThreadPoolExecutor(4) as pool:
        ids = list(pool.map(lambda case: run_case(box, key, case), cases))
    for case, request_id in zip(cases, ids, strict=True):
        check_case(box, case, request_id)
    balance, held = box.balance(email)
    charged = sum(int(box.settled_row(r)["cost_nanos"]) for r in ids)
    assert (balance, held) == (int(CREDIT_USD) * NANOS - charged, 0)
    ledger = box.query(
        'SELECT SUM(l.amount_nanos) FROM ledger_entry l JOIN "user" u ON u.id = l.user_id'
        " WHERE u.email = ?",
        email,
    )
    assert int(ledger[0][0]) == balance
    assert box.cli("doctor").startswith("ok")
