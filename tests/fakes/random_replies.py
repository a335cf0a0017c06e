"""Fake upstreams that answer each request with a reply drawn from a seeded random mix: plain
answers, usage far above any reservation, usage never reported, errors mid-stream, connections
cut, 429/500/529 before anything, endless streams, prompt-cache tokens, slow streams (for a
client to leave midway). For stress tests that check invariants, not answers."""

from __future__ import annotations

import random
import threading
from typing import Any

from tests.fakes import anthropic_upstream as anthropic
from tests.fakes.openai_upstream import FakeOpenAI, Reply

CACHED = anthropic.Reply(text="Cached.", cache_read_input_tokens=7, cache_creation_input_tokens=9,
                         cache_creation_1h_tokens=4)  # fmt: skip
PIECES = ["a", " b", " c", " d", " e", " f"]
HUGE = 10**7  # tokens: far above any reservation


class RandomOpenAI(FakeOpenAI):
    """The fake OpenAI (chat, Responses, embeddings), each request's reply drawn at random."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.random = random.Random(seed)
        self.lock = threading.Lock()

    def _next_reply(self, body: Any) -> Reply:
        with self.lock:
            draw = self.random.randrange(10)
        return [
            Reply(pieces=PIECES, piece_delay=0.01),
            Reply(pieces=PIECES, prompt_tokens=HUGE, completion_tokens=HUGE),
            Reply(pieces=PIECES, completion_tokens_from_cap=True, piece_delay=0.01),
            Reply(pieces=PIECES, error_after=2, piece_delay=0.01),
            Reply(pieces=PIECES, drop_after=2, piece_delay=0.01),
            Reply(status=500),
            Reply(pieces=PIECES, usage=False, piece_delay=0.01),
            Reply(pieces=PIECES, endless=" x", endless_limit=2000),
            Reply(pieces=PIECES, cached_tokens=5, prompt_tokens=11, piece_delay=0.05),
            Reply(status=429),
        ][draw]


class RandomAnthropicReplies:
    """What FakeAnthropic pops its replies from: never empty, each one drawn at random."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)
        self.lock = threading.Lock()

    def __bool__(self) -> bool:
        return True

    def clear(self) -> None:
        """Nothing scripted to forget."""

    def popleft(self) -> anthropic.Reply:
        with self.lock:
            draw = self.random.randrange(8)
        text = "Hello there, this is a longer answer"
        return [
            anthropic.Reply(text=text, delay_sec=0.005),
            anthropic.Reply(text=text, input_tokens=HUGE, output_tokens=HUGE),
            anthropic.Reply(text=text, error_after_deltas=2, delay_sec=0.01),
            anthropic.Reply.error(529, "overloaded_error", "Overloaded"),
            CACHED,
            anthropic.Reply(text=text, delay_sec=0.05),
            anthropic.Reply(text=text, output_tokens=5000),
            anthropic.Reply.error(500, "api_error", "boom"),
        ][draw]


def random_anthropic(seed: int, api_key: str) -> anthropic.FakeAnthropic:
    """A started fake Anthropic whose every /v1/messages reply is drawn at random."""
    fake = anthropic.FakeAnthropic(api_keys=(api_key,)).start()
    fake.replies = RandomAnthropicReplies(seed)  # type: ignore[assignment]
    return fake
