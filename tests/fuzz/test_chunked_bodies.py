"""Chunked request bodies cut into tiny chunks, on raw sockets. Each chunk costs the box some
microseconds of its one event loop whatever it holds (a size line of up to 64 bytes, its
extension counted toward no limit), so 1-byte chunks made a body within max_body_bytes cost
seconds of the loop's time: with a key, or without one (the body is still read to its end
after the 401). Past a first allowance a body must average a fair size a chunk; real clients
(curl, httpx, aiohttp) send chunks of kilobytes."""

from __future__ import annotations

import json
import re

import pytest

from codelace_box.http_guard import FREE_CHUNKS, MIN_CHUNK_BYTES
from tests.fuzz.conftest import CHAT_MODEL, FuzzBox

pytestmark = pytest.mark.timeout(60)
BODY = {"model": CHAT_MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}


def chunked_post(path: str, data: bytes, size: int, *fields: bytes) -> bytes:
    """A POST of `data` in chunks of `size` bytes."""
    head = [b"POST " + path.encode() + b" HTTP/1.1", b"Host: box", b"Connection: close",
            b"Content-Type: application/json", b"Transfer-Encoding: chunked", *fields]  # fmt: skip
    chunks = [data[at : at + size] for at in range(0, len(data), size)]
    body = b"".join(b"%x\r\n%b\r\n" % (len(chunk), chunk) for chunk in chunks)
    return b"\r\n".join(head) + b"\r\n\r\n" + body + b"0\r\n\r\n"


def padded(length: int) -> bytes:
    """A chat request of `length` bytes (blanks after the JSON object)."""
    return json.dumps(BODY).encode().ljust(length)


def test_a_body_in_tiny_chunks_is_a_400_that_says_so(box: FuzzBox) -> None:
    key = b"Authorization: Bearer " + box.key.encode()
    answer = box.raw(chunked_post("/v1/chat/completions", padded(5000), 1, key))
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), answer[:300]
    assert re.search(rb"(?im)^connection: close\r?$", head), head
    assert re.search(rb"(?im)^x-request-id: req_[0-9a-f]{24}\r?$", head), head
    error = json.loads(body)["error"]
    assert "chunks" in error["message"] and "Content-Length" in error["message"], error


@pytest.mark.parametrize("size", [300, 4096, 65536])
def test_a_body_in_chunks_of_a_fair_size_is_served(box: FuzzBox, size: int) -> None:
    key = b"Authorization: Bearer " + box.key.encode()
    answer = box.raw(chunked_post("/v1/chat/completions", padded(900_000), size, key))
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]


def test_a_few_tiny_chunks_are_still_served(box: FuzzBox) -> None:
    """A client that sends a small body a few bytes at a time (a generator) is served."""
    key = b"Authorization: Bearer " + box.key.encode()
    answer = box.raw(chunked_post("/v1/chat/completions", padded(500), 1, key))
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]


def test_chunks_averaging_exactly_the_minimum_are_served(box: FuzzBox) -> None:
    """The rule is an average under MIN_CHUNK_BYTES: chunks of exactly that size pass, however
    many (the check once counted the chunk whose size line it was reading, not yet its bytes)."""
    key = b"Authorization: Bearer " + box.key.encode()
    data = padded(MIN_CHUNK_BYTES * (FREE_CHUNKS + 500))
    answer = box.raw(chunked_post("/v1/chat/completions", data, MIN_CHUNK_BYTES, key))
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]


def test_the_free_allowance_of_tiny_chunks_is_served_whole(box: FuzzBox) -> None:
    """FREE_CHUNKS chunks of one byte are within the allowance: the last-chunk (`0`) line
    that ends the body is no chunk of it."""
    key = b"Authorization: Bearer " + box.key.encode()
    answer = box.raw(chunked_post("/v1/chat/completions", padded(FREE_CHUNKS), 1, key))
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]
