"""Request ids sort by the second they were made (the unique indexes over them take inserts at
their end however long the history), and stay unique and of the documented shape."""

from __future__ import annotations

import os
import re
import time

from codelace_box.api.common import new_request_id

SHAPE = re.compile(r"^req_[0-9a-f]{24}$")


def test_ids_made_later_sort_later() -> None:
    moments = [1_700_000_000.0, 1_700_000_001.0, 1_800_000_000.5, 4_000_000_000.0]
    ids = [new_request_id(m) for m in moments]
    assert all(SHAPE.match(i) for i in ids), ids
    assert ids == sorted(ids)
    assert ids[0][4:12] == f"{1_700_000_000:08x}"  # the second, readable back


def test_ids_of_one_second_are_unique_and_random() -> None:
    ids = {new_request_id(1_700_000_000.0) for _ in range(10_000)}
    assert len(ids) == 10_000
    assert len({i[12:14] for i in ids}) == 256  # the random part spans every byte value


def test_the_clock_is_the_default() -> None:
    before = int(time.time())
    made = int(new_request_id()[4:12], 16)
    assert before <= made <= int(time.time())


def test_a_forked_worker_never_repeats_its_parents_ids() -> None:
    """The random part comes from a pool read ahead; a forked child must not inherit it."""
    new_request_id()  # the parent's pool now holds bytes read ahead
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # the child: its next ids, then out without running the test's teardown
        os.write(writer, " ".join(new_request_id(0) for _ in range(20)).encode())
        os._exit(0)
    os.close(writer)
    os.waitpid(child, 0)
    with os.fdopen(reader) as pipe:
        childs = set(pipe.read().split())
    parents = {new_request_id(0) for _ in range(20)}
    assert len(childs) == 20
    assert not childs & parents
