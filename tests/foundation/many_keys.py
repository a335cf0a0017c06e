"""A SQLite source that takes a while to copy: many API keys written straight into its file."""

from __future__ import annotations

from pathlib import Path

import apsw


def add_api_keys(path: Path, count: int) -> None:
    """`count` API keys of user 1, in one transaction on the file itself (fast, no hashing)."""
    connection = apsw.Connection(str(path))
    with connection:
        connection.executemany(
            "INSERT INTO api_key (uuid, user_id, name, key_prefix, key_hash, created_at) "
            "VALUES (?, 1, 'k', 'cl_abcd', ?, '2026-01-01 00:00:00')",
            ((f"00000000-0000-4000-8000-{n:012d}", f"hash-{n}") for n in range(count)),
        )
    connection.close()
