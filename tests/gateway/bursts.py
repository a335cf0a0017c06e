"""Bursts of concurrent chat requests for the concurrency tests (one box or several).

The flat model charges only output, and the fake upstream (with `completion_tokens_from_cap`)
reports as many output tokens as the cap it was sent, so every admitted request costs exactly
its hold (`EACH`): a budget of 10.5 requests' worth admits exactly 10.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence

import openai
from openai.types.chat import ChatCompletionMessageParam

from tests.gateway.conftest import Box, cost_nanos

FLAT = "fake/flat"
FLAT_MODEL = ("models", "set", FLAT, "--input-per-1m", "0", "--output-per-1m", "10",
              "--provider", "fake")  # fmt: skip
CAP = 100  # the max_tokens of every request: what it reserves, and what the fake reports
EACH = cost_nanos(0, CAP, "0", "10")  # the hold, and the actual cost, of one request
HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Count to a hundred"}]
Outcome = tuple[int, str | None]  # (HTTP status, error code); status 0: the connection dropped


async def _one(client: openai.AsyncOpenAI) -> Outcome:
    try:
        await client.chat.completions.create(model=FLAT, messages=HELLO, max_tokens=CAP)
    except openai.APIStatusError as exc:
        body = exc.body if isinstance(exc.body, dict) else {}
        return exc.status_code, body.get("code")
    except openai.APIConnectionError:  # the box was killed under it
        return 0, None
    return 200, None


async def _spread(boxes: Sequence[Box], key: str, count: int) -> list[Outcome]:
    clients = [box.async_sdk(key) for box in boxes]
    try:
        turn = itertools.cycle(clients)
        return await asyncio.gather(*(_one(next(turn)) for _ in range(count)))
    finally:
        for client in clients:
            await client.close()


def burst(boxes: Sequence[Box], key: str, count: int) -> list[Outcome]:
    """Send `count` requests at once with one key, spread over the boxes in turn."""
    return asyncio.run(_spread(boxes, key, count))


def statuses(outcomes: list[Outcome]) -> list[int]:
    """The HTTP statuses of a burst's outcomes, in order."""
    return [status for status, _ in outcomes]


async def _everyone(boxes: Sequence[Box], keys: Sequence[str], rounds: int) -> list[Outcome]:
    clients = [[box.async_sdk(key) for box in boxes] for key in keys]
    try:
        turns = [itertools.cycle(own) for own in clients]
        return await asyncio.gather(*(_one(next(turn)) for _ in range(rounds) for turn in turns))
    finally:
        for own in clients:
            for client in own:
                await client.close()


def burst_of_users(boxes: Sequence[Box], keys: Sequence[str], rounds: int) -> list[Outcome]:
    """`rounds` requests of every key at once, each key's spread over the boxes in turn."""
    return asyncio.run(_everyone(boxes, keys, rounds))
