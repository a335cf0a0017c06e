"""Objects kept by a key as long as something else refers to them (a process's running calls,
its requests in flight), more cheaply than the weakref module's own containers."""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class LiveRefs(Generic[T]):
    """Plain weak references by key: an object is gone once nothing else refers to it; the
    dead entries are dropped whenever the entries have doubled since the last count. (A
    WeakValueDictionary makes a Python KeyedRef and runs a Python callback for each object,
    a WeakSet a Python `add` and a callback: about 7,800 and 3,200 instructions an object,
    against about 1,000.) For one thread."""

    __slots__ = ("_count_at", "_refs")

    def __init__(self) -> None:
        self._refs: dict[str, weakref.ref[T]] = {}
        self._count_at = 64

    def add(self, key: str, value: T) -> None:
        refs = self._refs
        refs[key] = weakref.ref(value)
        if len(refs) >= self._count_at:
            self._refs = {key: ref for key, ref in refs.items() if ref() is not None}
            self._count_at = 2 * len(self._refs) + 64

    def get(self, key: str) -> T | None:
        """The object kept by `key`, if it is still alive."""
        ref = self._refs.get(key)
        return None if ref is None else ref()

    def __contains__(self, key: str) -> bool:
        ref = self._refs.get(key)
        return ref is not None and ref() is not None

    def __iter__(self) -> Iterator[T]:
        """The objects still alive (a copy: adding meanwhile is safe)."""
        return iter([value for ref in list(self._refs.values()) if (value := ref()) is not None])
