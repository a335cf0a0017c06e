"""A whole answer an upstream compresses (Content-Encoding gzip) with a Content-Length, which
counts the compressed bytes: the box takes the decoded answer whole however its bytes arrive,
never the first read of it alone because that read happened to be as long as the declared
length."""

from __future__ import annotations

import json
import random
import zlib

import pytest

from tests.fakes.hostile_upstream import Act, HostileUpstream
from tests.hostile.conftest import HostileBox

pytestmark = pytest.mark.timeout(60)


def answer_text() -> bytes:
    """A chat.completion whose text compresses to about two thirds (seeded: the same bytes each
    run)."""
    letters = random.Random(1)
    text = "".join(letters.choice("abcdefghijklmnopqrstuvwxyz0123456789 ") for _ in range(3000))
    message = {"role": "assistant", "content": text}
    return json.dumps({"id": "c1", "object": "chat.completion", "created": 1, "model": "m",
                       "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": 7, "completion_tokens": 3,
                                 "total_tokens": 10}}).encode()  # fmt: skip


def gzip_in_two(body: bytes, split: int) -> tuple[bytes, bytes]:
    """`body` gzipped in two parts, the first decoding to body[:split] on its own."""
    packer = zlib.compressobj(6, zlib.DEFLATED, 31)
    first = packer.compress(body[:split]) + packer.flush(zlib.Z_SYNC_FLUSH)
    return first, packer.compress(body[split:]) + packer.flush()


def parts_as_long_as_the_length(body: bytes) -> tuple[bytes, bytes]:
    """Two gzip parts whose first decodes to as many bytes as both parts together are long."""
    for split in range(1, len(body)):
        first, rest = gzip_in_two(body, split)
        if len(first) + len(rest) == split:
            return first, rest
    raise AssertionError("no such split")


def test_a_gzipped_answer_whose_first_part_decodes_to_its_length_is_taken_whole(
    box: HostileBox, hostile: HostileUpstream
) -> None:
    """The first read (the first part, decoded) was as long as the Content-Length and taken for
    the whole body: a free 502 "a body that is not JSON" for an answer the provider made (and
    billed), after a retry that had it made again."""
    email, key = box.new_user("10")
    body = answer_text()
    first, rest = parts_as_long_as_the_length(body)
    headers = {"Content-Encoding": "gzip"}
    hostile.push(Act(200, [first, 0.3, rest], headers=headers, length=len(first) + len(rest)))
    answer = box.post(key, "chat", "ho", stream=False)
    assert answer.status_code == 200, answer.text
    text = json.loads(body)["choices"][0]["message"]["content"]
    assert answer.json()["choices"][0]["message"]["content"] == text
    assert len(hostile.seen) == 1
    row = box.last_row(email)
    assert row["status"] == "ok" and 0 < row["cost_nanos"] <= row["hold_nanos"], row
